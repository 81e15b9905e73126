#!/usr/bin/env bash
# FUSE over io_uring (-o uring) against /dev/fuse and the direct read, interleaved round by
# round in one run (so that load from elsewhere falls on all of them alike):
#   cat       1000 x 4 KiB layers, first pass on a fresh mount, sources cached; with the
#             prefetcher off (every layer is a READ the reader waits for: the transport's
#             own cost) and on (the default);
#   fio       psync random 4 KiB over a 256 MiB layer on a fresh mount, 1 and 4 processes.
# Turns /sys/module/fuse/parameters/enable_uring on for the run and back to what it was.
# Prints a Markdown table of medians. Never fails on a timing.
#   scripts/bench-uring.sh LAYERFS     (make bench)       BENCH_ROUNDS (5), BENCH_KEEP=1
source "$(dirname "$0")/bench-common.sh"
log() { echo "bench-uring: $*" >&2; }
ensure_packages fio python3 openssl fuse3
source "$here/../Tests/shell/lib.sh"
require_fuse "the io_uring benchmark's mounts"
param=/sys/module/fuse/parameters/enable_uring
if [ ! -w "$param" ]; then
    echo "SKIPPED: $param is absent or not writable: no FUSE over io_uring to measure here" >&2
    exit 0
fi
original=$(cat "$param")

work=$(mktemp -d /tmp/layerfs-bench-uring-XXXXXX)
mnt=$work/mnt; mkdir -p "$mnt" "$work/res"
cleanup() {
    grep -q " $mnt " /proc/mounts && { "$layerfs" unmount "$mnt" >/dev/null 2>&1 || umount -l "$mnt"; }
    echo "$original" > "$param"
    [ "${BENCH_KEEP:-0}" = 1 ] || rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM
echo Y > "$param"

# ---- data: D01 1000 x 4 KiB, D02 one 256 MiB layer
src=$work/src; vol=$work/vol; stamp=2024-06-01T00:00:00Z
python3 "$here/bench_volume.py" files "$src/D01" 1000 4096
mkdir -p "$src/D02"
openssl rand -out "$src/D02/layer-001" $((256 << 20))
"$layerfs" init "$vol" >/dev/null
for d in 1 2; do "$layerfs" pack --dimension $d --time $stamp "$src/D0$d" "$vol/consciousness/D0$d" >/dev/null || exit 1; done

record() { echo "$3" >> "$work/res/$1.$2"; }
ms() { local t0=${EPOCHREALTIME/./}; "$@" >/dev/null 2>&1; local t1=${EPOCHREALTIME/./}; awk -v d=$((t1 - t0)) 'BEGIN { printf "%.2f", d / 1000 }'; }
# mount_as VARIANT EXTRA: devfuse or uring; the uring mount must say its queues registered.
mount_as() {
    local opts="log_file=$work/mount.log${2:+,$2}"
    [ "$1" = uring ] && opts="uring,$opts"
    : > "$work/mount.log"
    "$layerfs" mount -o "$opts" "$vol" "$mnt" 2>/dev/null || { log "mount -o $opts failed"; return 1; }
    if [ "$1" = uring ]; then
        for _ in $(seq 20); do grep -q "io_uring: in use" "$work/mount.log" && return 0; sleep 0.05; done
        log "the ring is not in use: $(grep io_uring "$work/mount.log" | head -1)"
        unmount; return 1
    fi
}
unmount() { "$layerfs" unmount "$mnt" >/dev/null 2>&1; }

cat "$src"/D01/* "$src/D02/layer-001" "$vol"/consciousness/D0*/region.mmap > /dev/null
load_before=$(cut -d' ' -f1-3 /proc/loadavg)
log "$rounds rounds"
for ((r = 1; r <= rounds; r++)); do
    log "round $r"
    record cat direct "$(ms sh -c 'cat "$1"/D01/* > /dev/null' sh "$src")"
    for pf in 0 1024; do
        for t in devfuse uring; do
            mount_as $t prefetch_kb=$pf || continue
            record cat$pf $t "$(ms sh -c 'cat "$1"/D01/* > /dev/null' sh "$mnt")"
            unmount
        done
    done
    for jobs in 1 4; do
        record rand$jobs direct "$(fio_iops "$src/D02/layer-001" $jobs)"
        for t in devfuse uring; do
            mount_as $t || continue
            record rand$jobs $t "$(fio_iops "$mnt/D02/layer-001" $jobs)"
            unmount
        done
    done
done
load_after=$(cut -d' ' -f1-3 /proc/loadavg)

# median_of CASE VARIANT: the median of the rounds recorded for them (nothing when none were).
median_of() { [ -s "$work/res/$1.$2" ] && median < "$work/res/$1.$2"; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (a == "" || b == "" || b == 0) print "n/a"; else printf "%.2f×", a / b }'; }

echo
echo "FUSE over io_uring vs /dev/fuse, $(date -u +%Y-%m-%dT%H:%M:%SZ), kernel $(uname -r), $(nproc) cores, layerfs $("$layerfs" --version 2>/dev/null)"
echo "- medians of $rounds rounds; load average before: $load_before, after: $load_after"
echo
echo "| case | direct | /dev/fuse | io_uring | /dev/fuse ÷ direct | io_uring ÷ direct | io_uring ÷ /dev/fuse |"
echo "|---|---|---|---|---|---|---|"
d=$(median_of cat direct)
for pf in 0 1024; do
    a=$(median_of cat$pf devfuse); b=$(median_of cat$pf uring)
    echo "| cat 1000 × 4 KiB, first pass, prefetch_kb=$pf (ms) | $d | ${a:-n/a} | ${b:-n/a} | $(ratio "$a" "$d") | $(ratio "$b" "$d") | $(ratio "$b" "$a") |"
done
for jobs in 1 4; do
    d=$(median_of rand$jobs direct); a=$(median_of rand$jobs devfuse); b=$(median_of rand$jobs uring)
    echo "| fio psync random 4 KiB, $jobs job(s) (kIOPS) | $d | ${a:-n/a} | ${b:-n/a} | $(ratio "$a" "$d") | $(ratio "$b" "$d") | $(ratio "$b" "$a") |"
done
