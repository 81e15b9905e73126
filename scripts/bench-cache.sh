#!/usr/bin/env bash
# The second round's levers, each against the direct read and with the lever turned off, in
# one run with the variants interleaved round by round (so that load from elsewhere on the
# machine falls on all of them alike):
#   served_pages   keep | drop | pageout: page cache held after reading a 256 MiB layer once
#                  (bytes resident in the region and in the mount's file, from fincore, which
#                  load does not disturb), first read, re-read and a consumer's mmap read;
#   prefetch_kb    0 | 1024: cat of 1000 x 4 KiB layers, first pass, sources cached and cold
#                  (evicted with POSIX_FADV_DONTNEED, not drop_caches), with the number of
#                  FUSE requests the reader waited for (perf, fuse:fuse_request_send);
#   random reads   fio psync 4 KiB over the 256 MiB layer on a fresh mount, 1 and 4 processes;
#   xattrs         getfattr -n user.checksum over 10 000 layers (and the requests it sends).
# Prints a Markdown table of medians. Never fails on a timing.
#   scripts/bench-cache.sh LAYERFS     (make bench)       BENCH_ROUNDS (5), BENCH_KEEP=1
source "$(dirname "$0")/bench-common.sh"
log() { echo "bench-cache: $*" >&2; }
ensure_packages fio attr python3 openssl fuse3 util-linux
source "$here/../Tests/shell/lib.sh"
require_fuse "the page-cache benchmark's mounts"

work=$(mktemp -d /tmp/layerfs-bench-cache-XXXXXX)
mnt=$work/mnt; mkdir -p "$mnt" "$work/res"
cleanup() {
    grep -q " $mnt " /proc/mounts && { "$layerfs" unmount "$mnt" >/dev/null 2>&1 || umount -l "$mnt"; }
    [ "${BENCH_KEEP:-0}" = 1 ] || rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# perf counting a tracepoint in the reader's own context: needs tracefs.
have_trace=0
if command -v perf >/dev/null; then
    [ -d /sys/kernel/tracing/events ] || mount -t tracefs nodev /sys/kernel/tracing 2>/dev/null
    [ -d /sys/kernel/tracing/events/fuse ] && have_trace=1
fi

# ---- data: D01 one 256 MiB layer, D02 1000 x 4 KiB, D03 10 000 x 1 KiB with checksum xattrs
src=$work/src; vol=$work/vol; stamp=2024-06-01T00:00:00Z
mkdir -p "$src/D01"
openssl rand -out "$src/D01/layer-001" $((256 << 20))
python3 "$here/bench_volume.py" files "$src/D02" 1000 4096
python3 "$here/bench_volume.py" files "$src/D03" 10000 1024 --meta --checksum-xattr
"$layerfs" init "$vol" >/dev/null
for d in 1 2 3; do "$layerfs" pack --dimension $d --time $stamp "$src/D0$d" "$vol/consciousness/D0$d" >/dev/null || exit 1; done
region1=$vol/consciousness/D01/region.mmap; region2=$vol/consciousness/D02/region.mmap

evict() { python3 -c 'import os, sys
for p in sys.argv[1:]:
    fd = os.open(p, os.O_RDONLY); os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED); os.close(fd)' "$@"; }
resident() { fincore -b -n -o RES "$1" 2>/dev/null | tr -d ' ' || echo 0; }
record() { echo "$3" >> "$work/res/$1.$2"; }
# ms COMMAND...: wall time in ms
ms() { local t0=${EPOCHREALTIME/./}; "$@" >/dev/null 2>&1; local t1=${EPOCHREALTIME/./}; awk -v d=$((t1 - t0)) 'BEGIN { printf "%.2f", d / 1000 }'; }
# requests COMMAND...: FUSE requests the command sent (in its own context), or nothing
requests() {
    [ $have_trace = 1 ] || { "$@" >/dev/null 2>&1; return; }
    perf stat -x, -e fuse:fuse_request_send -o "$work/res/perf" "$@" >/dev/null 2>&1
    awk -F, '/fuse_request_send/ { print $1 }' "$work/res/perf"
}
mount_with() {  # OPTIONS (may be empty)
    "$layerfs" mount ${1:+-o "$1"} "$vol" "$mnt" 2>/dev/null || { log "mount -o $1 failed"; return 1; }
}
unmount() { "$layerfs" unmount "$mnt" >/dev/null 2>&1; }
mmap_read() { fio --name=m --filename="$1" --readonly --invalidate=0 --ioengine=mmap --rw=read --bs=1M --size=256M --output-format=json 2>/dev/null |
    python3 -c 'import json, sys
t = sys.stdin.read(); d = json.loads(t[t.index("{"):]); print("%.2f" % (d["jobs"][0]["read"]["runtime"]))'; }

load_before=$(cut -d' ' -f1-3 /proc/loadavg)
log "$rounds rounds"
for ((r = 1; r <= rounds; r++)); do
    log "round $r"
    # -- one copy in memory: 256 MiB layer, from evicted sources
    evict "$src/D01/layer-001"
    record seq1 direct "$(ms dd if="$src/D01/layer-001" of=/dev/null bs=1M)"
    record pc direct "$(resident "$src/D01/layer-001")"
    record seq2 direct "$(ms dd if="$src/D01/layer-001" of=/dev/null bs=1M)"
    record mmap direct "$(mmap_read "$src/D01/layer-001")"
    for p in keep drop pageout; do
        mount_with served_pages=$p || continue
        evict "$region1"
        record seq1 $p "$(ms dd if="$mnt/D01/layer-001" of=/dev/null bs=1M)"
        record pc $p "$(( $(resident "$region1") + $(resident "$mnt/D01/layer-001") ))"
        record seq2 $p "$(ms dd if="$mnt/D01/layer-001" of=/dev/null bs=1M)"
        record mmap $p "$(mmap_read "$mnt/D01/layer-001")"
        record fio1 $p "$(fio_iops "$mnt/D01/layer-001" 1)"   # all cached now: a consumer re-reading
        unmount
    done
    # -- random 4 KiB reads on a fresh mount (sources cached)
    cat "$src/D01/layer-001" "$region1" > /dev/null
    for jobs in 1 4; do
        record rand$jobs direct "$(fio_iops "$src/D01/layer-001" $jobs)"
        for p in keep drop; do
            mount_with served_pages=$p || continue
            record rand$jobs $p "$(fio_iops "$mnt/D01/layer-001" $jobs)"
            unmount
        done
    done
    # -- cat 1000 x 4 KiB, first pass: sources cached, then cold
    for temp in warm cold; do
        if [ $temp = warm ]; then cat "$src"/D02/* "$region2" > /dev/null; else evict "$src"/D02/* "$region2"; fi
        record cat$temp direct "$(ms sh -c 'cat "$1"/D02/* > /dev/null' sh "$src")"
        for kb in 0 1024; do
            if [ $temp = warm ]; then cat "$region2" > /dev/null; else evict "$region2"; fi
            mount_with prefetch_kb=$kb || continue
            # The reader's own requests (the glob's listing included), then its time on a new mount.
            record req$temp pf$kb "$(requests sh -c 'cat "$1"/D02/* > /dev/null' sh "$mnt")"
            unmount
            if [ $temp = warm ]; then cat "$region2" > /dev/null; else evict "$region2"; fi
            mount_with prefetch_kb=$kb || continue
            record cat$temp pf$kb "$(ms sh -c 'cat "$1"/D02/* > /dev/null' sh "$mnt")"
            unmount
        done
    done
    # -- xattrs
    ls -l "$src/D03" > /dev/null
    record xattr direct "$(ms sh -c 'getfattr --absolute-names -n user.checksum "$1"/D03/* > /dev/null' sh "$src")"
    mount_with "" && {
        ls -l "$mnt/D03" > /dev/null
        record xattr layerfs "$(ms sh -c 'getfattr --absolute-names -n user.checksum "$1"/D03/* > /dev/null' sh "$mnt")"
        record xreq layerfs "$(requests sh -c 'getfattr --absolute-names -n user.checksum "$1"/D03/* > /dev/null' sh "$mnt")"
        unmount
    }
done
load_after=$(cut -d' ' -f1-3 /proc/loadavg)

# median_of CASE VARIANT: the median of the rounds recorded for them (nothing when none were).
median_of() { [ -s "$work/res/$1.$2" ] && median < "$work/res/$1.$2"; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (a == "" || b == "" || b == 0) print "n/a"; else printf "%.2f×", a / b }'; }
mib() { awk -v b="$1" 'BEGIN { if (b == "") print "n/a"; else printf "%.0f MiB", b / 1048576 }'; }

echo
echo "Page cache and prefetch levers, $(date -u +%Y-%m-%dT%H:%M:%SZ), kernel $(uname -r), $(nproc) cores, layerfs $("$layerfs" --version 2>/dev/null)"
echo "- medians of $rounds rounds; load average before: $load_before, after: $load_after"
echo
echo "| case | direct | variant | layerfs | ÷ direct |"
echo "|---|---|---|---|---|"
d=$(median_of pc direct)
for p in keep drop pageout; do v=$(median_of pc $p); echo "| page cache after reading the 256 MiB layer once (from evicted sources) | $(mib "$d") | served_pages=$p | $(mib "$v") | $(ratio "$v" "$d") |"; done
for c in seq1:"256 MiB layer, first read (source evicted)" seq2:"256 MiB layer, re-read" mmap:"256 MiB layer, consumer's mmap read (fio mmap, ms)"; do
    d=$(median_of "${c%%:*}" direct)
    for p in keep drop pageout; do v=$(median_of "${c%%:*}" $p); echo "| ${c#*:} | $d ms | served_pages=$p | $v ms | $(ratio "$v" "$d") |"; done
done
for p in keep drop pageout; do echo "| random 4 KiB reads, 1 process, layer already read once (page cache of the file) | — | served_pages=$p | $(median_of fio1 $p) k IOPS | — |"; done
for j in 1 4; do
    d=$(median_of rand$j direct)
    for p in keep drop; do v=$(median_of rand$j $p); echo "| random 4 KiB reads, fio psync, fresh mount, $j process(es) | $d k IOPS | served_pages=$p | $v k IOPS | $(ratio "$d" "$v") |"; done
done
for t in warm:"sources cached" cold:"sources evicted (cold disk)"; do
    d=$(median_of "cat${t%%:*}" direct)
    for kb in 0 1024; do
        v=$(median_of "cat${t%%:*}" pf$kb); n=$(median_of "req${t%%:*}" pf$kb)
        echo "| cat 1000 × 4 KiB, first pass, ${t#*:} | $d ms | prefetch_kb=$kb | $v ms (${n:-?} FUSE requests) | $(ratio "$v" "$d") |"
    done
done
d=$(median_of xattr direct); v=$(median_of xattr layerfs); n=$(median_of xreq layerfs)
echo "| getfattr -n user.checksum, 10 000 layers | $d ms | defaults | $v ms (${n:-?} FUSE requests) | $(ratio "$v" "$d") |"
echo
echo "Ratios: time ÷ direct time (for IOPS: direct ÷ layerfs; for page cache: bytes ÷ the direct read's); 1× is the page-cache ceiling."
