#!/usr/bin/env bash
# Figures for the format: how fast `layerfs verify` hashes, and how long a 100 000-layer
# index takes to load. Prints the machine and a Markdown table; never fails on a timing.
#
#   scripts/bench-format.sh LAYERFS        (make bench-format)
#
# (a) verify throughput: one dimension of 8 layers x 64 MiB of random bytes, warmed into the
#     page cache; median of 5 `layerfs verify DIMDIR`; MB/s = layer content bytes / time,
#     against `openssl speed -evp sha256` (16 KiB blocks, one thread) in the same run.
#     verify hashes the region checksum and the layers on two threads, so the region's
#     bytes are hashed twice in the wall time of one pass.
# (b) index parse: a dimension of 100 000 tiny layers written by scripts/bench_volume.py
#     (the format exactly; `layerfs verify` must say OK), median of 5 `layerfs info BASE` on a
#     volume holding only that dimension (info loads and validates the whole index: an upper
#     bound on parse time), less the same on an empty volume (process start-up).
# Environment: BENCH_ROUNDS (default 5), BENCH_LAYERS (default 8), BENCH_LAYER_MIB (64),
# BENCH_INDEX_LAYERS (100000).
source "$(dirname "$0")/bench-common.sh"
nlayers=${BENCH_LAYERS:-8}
layer_mib=${BENCH_LAYER_MIB:-64}
index_layers=${BENCH_INDEX_LAYERS:-100000}

# ---- packages
ensure_packages openssl python3

work=$(mktemp -d /tmp/layerfs-bench-format-XXXXXX)
cleanup() { rm -rf "$work"; }
trap cleanup EXIT
trap 'exit 130' INT TERM

# ---- helpers
# Runs a command ROUNDS times, prints each wall time in seconds (one per line).
time_runs() {
    local i t0 t1
    for ((i = 0; i < rounds; i++)); do
        t0=${EPOCHREALTIME/./}
        "$@" >/dev/null 2>&1
        t1=${EPOCHREALTIME/./}
        awk -v d=$((t1 - t0)) 'BEGIN { printf "%.6f\n", d / 1e6 }'
    done
}

machine() {
    echo "## layerfs format benchmark"
    echo
    echo "- machine: $(nproc) cores, $(grep -m1 '^model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//'), $(free -g | awk '/^Mem:/ {print $2 " GiB RAM"}')"
    echo "- kernel: $(uname -r)"
    echo "- libfuse: $(dpkg-query -W -f='${Version}' libfuse3-3 2>/dev/null || echo unknown); $(openssl version 2>/dev/null)"
    echo "- layerfs: $("$layerfs" --version 2>/dev/null || echo unknown) ($(basename "$layerfs"), git $(git -C "$(dirname "$0")/.." rev-parse --short HEAD 2>/dev/null || echo unknown))"
    echo "- date: $(date -u +%Y-%m-%dT%H:%M:%SZ)"
    echo "- load average (1, 5, 15 min) at the end: $(cut -d' ' -f1-3 /proc/loadavg); medians of $rounds runs"
    echo
}

time_arg=2024-06-01T00:00:00Z

# ---- (a) verify throughput
echo "preparing: $nlayers x $layer_mib MiB of random layers" >&2
in=$work/in; mkdir -p "$in"
for ((i = 1; i <= nlayers; i++)); do
    openssl rand -out "$in/$(printf 'layer-%03d' "$i")" $((layer_mib << 20))
done
vol=$work/vol; mkdir -p "$vol/consciousness" "$vol/proto"
"$layerfs" pack --dimension 1 --time "$time_arg" "$in" "$vol/consciousness/D01" >/dev/null
rm -rf "$in"                                  # only the region is measured; free the cache
content_bytes=$((nlayers * layer_mib << 20))
dim=$vol/consciousness/D01
verify_out=$("$layerfs" verify "$dim" 2>&1); verify_rc=$?
cat "$dim/region.mmap" "$dim/index.json" >/dev/null   # warm into the page cache
echo "timing: layerfs verify x $rounds" >&2
t_verify=$(time_runs "$layerfs" verify "$dim" | median)
echo "timing: openssl speed -evp sha256" >&2
openssl_kbs=$(openssl speed -evp sha256 -seconds 3 -bytes 16384 2>/dev/null | awk '/^sha256/ { v = $NF } END { sub(/k$/, "", v); print v }')
[ -n "$openssl_kbs" ] || openssl_kbs=nan
verify_mbs=$(calc "$content_bytes / 1e6 / $t_verify" "%.0f")
openssl_mbs=$(calc "$openssl_kbs * 1000 / 1e6" "%.0f")
verify_ratio=$(calc "($content_bytes / 1e6 / $t_verify) / ($openssl_kbs / 1000)" "%.2f")

# ---- (b) a 100 000-layer index
echo "preparing: a dimension of $index_layers layers (scripts/bench_volume.py)" >&2
big=$work/big; mkdir -p "$big/consciousness" "$big/proto"
python3 "$here/bench_volume.py" dimension "$big/consciousness/D01" 1 "$index_layers" 64 --time "$time_arg"
empty=$work/empty; mkdir -p "$empty/consciousness" "$empty/proto"
big_verify=$("$layerfs" verify "$big/consciousness/D01" 2>&1); big_verify_rc=$?
index_mb=$(calc "$(stat -c %s "$big/consciousness/D01/index.json") / 1e6" "%.1f")
cat "$big/consciousness/D01/index.json" "$big/consciousness/D01/region.mmap" >/dev/null
info_out=$("$layerfs" info "$big" 2>&1); info_rc=$?
echo "timing: layerfs info x $rounds" >&2
t_info=$(time_runs "$layerfs" info "$big" | median)
t_info_empty=$(time_runs "$layerfs" info "$empty" | median)
t_verify_big=$(time_runs "$layerfs" verify "$big/consciousness/D01" | median)

# ---- report
machine
echo "| measure | layerfs | reference | ratio |"
echo "|---|---|---|---|"
echo "| verify: $nlayers × $layer_mib MiB in the page cache, MB/s of layer bytes (median of $rounds) | $verify_mbs MB/s ($(calc "$t_verify * 1000" "%.0f") ms) | openssl speed -evp sha256, 16 KiB blocks, 1 thread: $openssl_mbs MB/s | $verify_ratio |"
echo "| info: volume with one dimension of $index_layers layers (median of $rounds) | $(calc "$t_info * 1000" "%.0f") ms | info on an empty volume (start-up): $(calc "$t_info_empty * 1000" "%.0f") ms | index load ≈ $(calc "($t_info - $t_info_empty) * 1000" "%.0f") ms |"
echo "| index.json of $index_layers layers | $index_mb MB | | |"
echo "| verify: the $index_layers-layer dimension (median of $rounds) | $(calc "$t_verify_big * 1000" "%.0f") ms | | |"
echo
echo "- verify of the $nlayers-layer dimension: $(echo "$verify_out" | tail -1 | sed "s|$work/||") (exit $verify_rc)"
echo "- verify of the $index_layers-layer dimension: $(echo "$big_verify" | tail -1 | sed "s|$work/||") (exit $big_verify_rc)"
if [ "$info_rc" -ne 0 ] || ! echo "$info_out" | grep -q " $index_layers "; then
    echo "- warning: layerfs info did not list $index_layers layers (exit $info_rc): $(echo "$info_out" | tail -2 | tr '\n' ' ')"
fi
exit 0
