#!/usr/bin/env bash
# Figures for writable mounts. Prints the machine and Markdown table rows; never fails on a
# timing (it fails only when a copy itself fails).
#
#   scripts/bench-writable.sh LAYERFS        (part of make bench)
#
# (a) `cp` of a 256 MiB file into an empty dimension of a writable mount, commit included
#     (`cp` then fsync of the dimension directory, which returns once the generation is
#     durable), against `cp` + fsync of the copy on the volume's own filesystem; target ≤ 2×.
# (b) `cp -r` of 1 000 files of 4 KiB (named layer-001...) into an empty dimension, commits
#     included (then fsync of the directory), against `cp -r` + `sync -f` on the volume's own
#     filesystem; target ≤ 5×.
# (c) a 4 KiB layer written and closed through the writable mount: time until a read-only
#     mount of the same volume shows it (polled every 0.5 ms), median and max of LATENCIES
#     (default 50) layers; target median ≤ 50 ms.
# Medians of ROUNDS runs; the page cache holds the source before each case.
# Environment: BENCH_ROUNDS (default 5), BENCH_LATENCIES (50).
source "$(dirname "$0")/bench-common.sh"
latencies=${BENCH_LATENCIES:-50}

ensure_packages python3

work=$(mktemp -d /tmp/layerfs-bench-writable-XXXXXX)
w=$work/w; r=$work/r
cleanup() {
    for x in "$w" "$r"; do grep -q " $x " /proc/mounts && { umount "$x" 2>/dev/null || umount -l "$x"; }; done
    rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

fsync_dir() { python3 -c 'import os,sys; fd = os.open(sys.argv[1], os.O_RDONLY | os.O_DIRECTORY); os.fsync(fd); os.close(fd)' "$1"; }

echo "## layerfs writable mount benchmark"
echo
echo "- machine: $(nproc) cores, $(grep -m1 '^model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//'), $(free -g | awk '/^Mem:/ {print $2 " GiB RAM"}')"
echo "- kernel: $(uname -r); filesystem of the volume: $(findmnt -n -o FSTYPE -T "$work" 2>/dev/null || echo unknown)"
echo "- layerfs: $("$layerfs" --version 2>/dev/null || echo unknown) ($(basename "$(dirname "$layerfs")") build, git $(git -C "$here/.." rev-parse --short HEAD 2>/dev/null || echo unknown))"
echo "- date: $(date -u +%Y-%m-%dT%H:%M:%SZ); medians of $rounds runs"
echo

v=$work/vol
mkdir -p "$v/consciousness" "$w" "$r" "$work/plain"
cd "$work" || exit 1
head -c $((256 << 20)) /dev/urandom > big
mkdir -p small
for i in $(seq 1 1000); do head -c 4096 /dev/urandom > "small/$(printf 'layer-%03d' "$i")"; done
cat big small/* > /dev/null
"$layerfs" mount --writable "$v" "$w" --log-file "$work/w.log" || exit 1
"$layerfs" mount "$v" "$r" --log-file "$work/r.log" -o poll_interval=1000 || exit 1

big_fuse=(); big_plain=(); small_fuse=(); small_plain=()
for round in $(seq "$rounds"); do
    n=$((round * 2 + 1))
    mkdir "$w/D$(printf '%02d' $n)" || exit 1
    t=$(now_us); cp big "$w/D$(printf '%02d' $n)/layer-001" && fsync_dir "$w/D$(printf '%02d' $n)" || exit 1
    big_fuse+=("$(seconds_since "$t")")
    rm -f "$work/plain/big"
    t=$(now_us); cp big "$work/plain/big" && sync -f "$work/plain/big" || exit 1
    big_plain+=("$(seconds_since "$t")")

    d=$w/D$(printf '%02d' $((n + 1)))
    mkdir "$d" || exit 1
    t=$(now_us); cp -r small/. "$d/" && fsync_dir "$d" || exit 1
    small_fuse+=("$(seconds_since "$t")")
    rm -rf "$work/plain/small"
    t=$(now_us); cp -r small "$work/plain/small" && sync -f "$work/plain/small" || exit 1
    small_plain+=("$(seconds_since "$t")")
done
bf=$(printf '%s\n' "${big_fuse[@]}" | median); bp=$(printf '%s\n' "${big_plain[@]}" | median)
sf=$(printf '%s\n' "${small_fuse[@]}" | median); sp=$(printf '%s\n' "${small_plain[@]}" | median)

# (c) latency to a read-only mount
mkdir "$w/D90" || exit 1
head -c 4096 /dev/urandom > four
lat=()
for i in $(seq "$latencies"); do
    f=$(printf 'layer-%03d' "$i")
    t=$(now_us)
    cp four "$w/D90/$f" || exit 1
    while [ ! -e "$r/D90/$f" ]; do sleep 0.0005; done
    lat+=("$(seconds_since "$t")")
done
lm=$(printf '%s\n' "${lat[@]}" | median); lx=$(printf '%s\n' "${lat[@]}" | sort -g | tail -1)

echo "| case | writable mount | volume's filesystem | ratio | target |"
echo "|---|---|---|---|---|"
echo "| cp 256 MiB into an empty dimension, commit included | $(calc "$bf" '%.2f s') | $(calc "$bp" '%.2f s') | $(calc "$bf / $bp" '%.2f×') | ≤ 2× |"
echo "| cp -r 1 000 × 4 KiB, commits included | $(calc "$sf" '%.2f s') | $(calc "$sp" '%.2f s') | $(calc "$sf / $sp" '%.2f×') | ≤ 5× |"
echo "| 4 KiB layer closed → shown by a read-only mount (median / max of $latencies) | $(calc "$lm * 1000" '%.1f ms') / $(calc "$lx * 1000" '%.1f ms') | | | median ≤ 50 ms |"
