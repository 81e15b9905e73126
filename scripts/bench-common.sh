# Sourced by the benchmark scripts: arguments, locations and package installs they share.
# Sets layerfs (the binary, $1), here (scripts/), rounds ($BENCH_ROUNDS, default 5).
set -uo pipefail
export LC_ALL=C

if [ $# -lt 1 ] || [ ! -x "$1" ]; then
    echo "usage: $0 LAYERFS_BINARY" >&2
    exit 2
fi
layerfs=$(realpath "$1")
here=$(cd "$(dirname "$0")" && pwd)
rounds=${BENCH_ROUNDS:-5}

# What a benchmark needs besides the project's own packages (scripts/install-deps.sh).
ensure_packages() {
    "$here/install-deps.sh" "$@" >&2 || echo "warning: could not install $*; cases needing them will show n/a" >&2
}
