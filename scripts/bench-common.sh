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

# Statistics and clocks the benchmarks share.
# median: of the numbers on stdin, one per line ("nan" when there are none).
median() { sort -g | awk '{ a[NR] = $1 } END { if (NR == 0) print "nan"; else if (NR % 2) print a[(NR + 1) / 2]; else print (a[NR / 2] + a[NR / 2 + 1]) / 2 }'; }
# calc EXPR FORMAT: awk arithmetic, printed with FORMAT; "n/a" for NaN or an error.
calc() { awk "BEGIN { x = $1; if (x != x) print \"n/a\"; else printf \"$2\", x }" 2>/dev/null || echo "n/a"; }
now_us() { echo "${EPOCHREALTIME/./}"; }
seconds_since() { awk -v d=$(( $(now_us) - $1 )) 'BEGIN { printf "%.6f\n", d / 1e6 }'; }

# fio_iops FILE JOBS: random 4 KiB psync reads of FILE by JOBS processes, in thousands of IOPS.
fio_iops() {
    fio --name=r --filename="$1" --readonly --rw=randread --bs=4k --ioengine=psync --invalidate=0 \
        --io_size=$((64 / $2))M --numjobs=$2 --group_reporting --randrepeat=1 --runtime=30 --output-format=json 2>/dev/null |
        python3 -c 'import json, sys
t = sys.stdin.read(); d = json.loads(t[t.index("{"):]); print("%.1f" % (d["jobs"][0]["read"]["iops"] / 1000))'
}
