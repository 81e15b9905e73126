#!/usr/bin/env bash
# Fuzzes the header and index parsers (and the legacy Jessy region parsers, on every input).
#   scripts/fuzz.sh [RUNS]        libFuzzer (coverage-guided) for RUNS cases (default 200000),
#                                 built with -sanitize=fuzzer into .build-fuzz
#   scripts/fuzz.sh --quick N     the built-in mutation fuzzer for N cases (make test)
# A crash or a hang (> 2 s per case) fails the run; every rejection must be a FormatError.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ "${1:-}" == "--quick" ]; then
    swift build --product layerfs-fuzz >/dev/null
    exec .build/debug/layerfs-fuzz "${2:-20000}" 1
fi
runs=${1:-200000}
swift build -c release --product layerfs-fuzz --scratch-path .build-fuzz \
    -Xswiftc -sanitize=fuzzer -Xswiftc -DFUZZING -Xswiftc -use-ld=lld >/dev/null
corpus=$(mktemp -d /tmp/layerfs-fuzz-XXXXXX)
trap 'rm -rf "$corpus"' EXIT
# Seed corpus: a real header and index as pack writes them (first byte picks the parser).
printf '\x00' > "$corpus/header"; .build/debug/layerfs init --sample "$corpus/vol" >/dev/null 2>&1 || true
if [ -f "$corpus/vol/consciousness/D01/region.mmap" ]; then
    head -c 256 "$corpus/vol/consciousness/D01/region.mmap" >> "$corpus/header"
    { printf '\x01'; cat "$corpus/vol/consciousness/D01/index.json"; } > "$corpus/index"
    rm -rf "$corpus/vol"
fi
.build-fuzz/release/layerfs-fuzz -runs="$runs" -timeout=2 -max_len=65536 -print_final_stats=1 "$corpus" 2>&1 | tail -15
