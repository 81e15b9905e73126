#!/usr/bin/env bash
# The read path's page-cache levers on real mounts: the prefetcher (prefetch_kb, pushing the
# next small layers with FUSE_NOTIFY_STORE) and served_pages (one copy in memory), checked
# for exact bytes with cat, cmp, sha256sum and a consumer's mmap, across an update that lands
# while a reader walks the dimension.
# Usage: scripts/test-cache.sh LAYERFS
set -uo pipefail
layerfs=$(realpath "$1")
here=$(cd "$(dirname "$0")/.." && pwd)
source "$here/Tests/shell/lib.sh"

require_fuse "the page-cache tests"

work=$(mktemp -d /tmp/layerfs-cache-XXXXXX)
mnt=$work/mnt
cleanup() {
    grep -q " $mnt " /proc/mounts && { "$layerfs" unmount "$mnt" >/dev/null 2>&1 || umount -l "$mnt" 2>/dev/null; }
    rm -rf "$work"
}
trap cleanup EXIT
mkdir -p "$mnt"

evict() { python3 -c 'import os, sys
for p in sys.argv[1:]:
    fd = os.open(p, os.O_RDONLY); os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED); os.close(fd)' "$@"; }
resident() { fincore -b -n -o RES "$1" 2>/dev/null || echo -1; }
mount_with() { "$layerfs" mount --log-file "$work/log" "$@" "$work/vol" "$mnt" 2>/dev/null; }
unmount() { "$layerfs" unmount "$mnt" >/dev/null 2>&1; }

# ---- the volume: 300 small layers, one 8 MiB layer
v=$work/vol
"$layerfs" init "$v" >/dev/null
mkdir -p "$work/small" "$work/large"
for i in $(seq 1 300); do
    head -c $((1000 + i * 10)) /dev/urandom > "$work/small/$(printf 'layer-%03d' "$i")"
done
head -c $((8 << 20)) /dev/urandom > "$work/large/layer-001"
"$layerfs" pack --dimension 1 "$work/small" "$v/consciousness/D01" >/dev/null
"$layerfs" pack --dimension 2 "$work/large" "$v/consciousness/D02" >/dev/null
(cd "$work/small" && sha256sum layer-* > "$work/small.sums")

# ---- options
expect_fail "served_pages=bogus is refused" "served_pages" "$layerfs" mount -o served_pages=bogus "$v" "$mnt"
expect_fail "prefetch_kb=-1 is refused" "prefetch_kb" "$layerfs" mount -o prefetch_kb=-1 "$v" "$mnt"

# ---- every combination reads exact bytes, twice (the second pass from the kernel's cache)
for opts in "" "prefetch_kb=0" "served_pages=keep" "served_pages=pageout" "prefetch_kb=4,served_pages=drop"; do
    evict "$v"/consciousness/D0[12]/region.mmap
    if ! mount_with ${opts:+-o "$opts"}; then fail "mount with '$opts'"; continue; fi
    expect "[$opts] every small layer, in order" sh -c "cd '$mnt/D01' && sha256sum -c --quiet '$work/small.sums'"
    expect "[$opts] again, from the cache" sh -c "cd '$mnt/D01' && sha256sum -c --quiet '$work/small.sums'"
    expect "[$opts] the large layer" cmp "$mnt/D02/layer-001" "$work/large/layer-001"
    expect "[$opts] the large layer through a consumer's mmap" python3 -c '
import mmap, sys
a = open(sys.argv[1], "rb"); m = mmap.mmap(a.fileno(), 0, prot=mmap.PROT_READ)
sys.exit(0 if m[:] == open(sys.argv[2], "rb").read() else 1)' "$mnt/D02/layer-001" "$work/large/layer-001"
    expect "[$opts] small layers in reverse order" sh -c "for f in \$(ls -r '$mnt/D01'); do cmp -s '$mnt/D01/'\$f '$work/small/'\$f || exit 1; done"
    unmount
done

# ---- random reads of the large layer: the prefetcher pushes the rest of it; every byte exact
for opts in "" "prefetch_random_mb=0"; do
    mount_with ${opts:+-o "$opts"} || { fail "mount with '$opts'"; continue; }
    expect "[$opts] 2000 random 4 KiB reads of the large layer" python3 -c '
import os, random, sys
a = os.open(sys.argv[1], os.O_RDONLY); b = open(sys.argv[2], "rb").read()
os.posix_fadvise(a, 0, 0, os.POSIX_FADV_RANDOM)
rng = random.Random(7)
for _ in range(2000):
    off = rng.randrange(0, len(b) - 4096)
    if os.pread(a, 4096, off) != b[off:off + 4096]: sys.exit("differs at %d" % off)' "$mnt/D02/layer-001" "$work/large/layer-001"
    expect "[$opts] then the whole large layer" cmp "$mnt/D02/layer-001" "$work/large/layer-001"
    unmount
done

# ---- the prefetcher did push: its count is logged at unmount
: > "$work/log"
mount_with && ls "$mnt/D01" >/dev/null && cat "$mnt"/D01/* >/dev/null
unmount
stored=$(sed -n 's/.*prefetch: [0-9]* hints, \([0-9]*\) layers.*/\1/p' "$work/log" | tail -1)
if [ "${stored:-0}" -gt 0 ]; then ok "the prefetcher stored $stored layers ahead of cat"; else fail "the prefetcher stored layers" "log: $(tail -3 "$work/log")"; fi

# ---- one copy in memory: the region's pages go once served (not on tmpfs, whose pages are the file)
region=$v/consciousness/D02/region.mmap
if [ "$(stat -f -c %T "$v")" = tmpfs ]; then
    skip "region pages dropped after a read" "the volume is on tmpfs"
else
    for policy in keep drop; do
        mount_with -o served_pages=$policy || { fail "mount served_pages=$policy"; continue; }
        evict "$region"
        cat "$mnt/D02/layer-001" > /dev/null
        r=$(resident "$region"); f=$(resident "$mnt/D02/layer-001")
        unmount
        if [ $policy = keep ]; then
            if [ "$r" -ge $((7 << 20)) ]; then ok "served_pages=keep: the region stays cached ($r bytes)"; else fail "served_pages=keep keeps the region" "$r bytes"; fi
        else
            if [ "$r" -le $((1 << 20)) ] && [ "$f" -ge $((8 << 20)) ]; then ok "served_pages=drop: one copy ($r bytes of the region, $f of the file)"
            else fail "served_pages=drop leaves one copy" "region $r bytes, file $f bytes"; fi
        fi
    done
fi

# ---- an update while a reader walks with the prefetcher: each layer is one generation's
mount_with || fail "mount for the update walk"
ls "$mnt/D01" >/dev/null
head -c 5000 /dev/urandom > "$work/new150"
( sleep 0.05; "$layerfs" update "$v/consciousness/D01" --put 150="$work/new150" >/dev/null ) &
bad=0
for round in 1 2 3 4 5; do
    for f in "$mnt"/D01/layer-*; do
        n=$(basename "$f")
        if ! cmp -s "$f" "$work/small/$n"; then
            [ "$n" = layer-150 ] && cmp -s "$f" "$work/new150" && continue
            bad=$((bad + 1))
        fi
    done
done
wait
expect_eq "every layer read during the update matches one generation" 0 "$bad"
got=""
for i in $(seq 1 10); do cmp -s "$mnt/D01/layer-150" "$work/new150" && { got=yes; break; }; sleep 0.1; done
expect_eq "the updated layer is served within 1 s" yes "$got"
expect "the other layers still read their bytes" sh -c "cd '$mnt/D01' && grep -v ' layer-150\$' '$work/small.sums' | sha256sum -c --quiet"
unmount

# ---- a signal while readers keep the prefetcher busy: the daemon still ends (a send stuck
# on a page locked by a READ that no worker will answer is freed by aborting the connection)
if mount_with -o prefetch_random_mb=8; then
    pid=$(pgrep -n -f -- "layerfs mount .*$work/vol $mnt\$")
    python3 -c '
import os, random, sys
rng = random.Random(3)
try:
    while True:
        a = os.open(sys.argv[1], os.O_RDONLY)
        for _ in range(200): os.pread(a, 4096, rng.randrange(0, 8 << 20))
        os.close(a)
except OSError:
    pass' "$mnt/D02/layer-001" 2>/dev/null &
    r1=$!
    ( while cat "$mnt"/D01/* >/dev/null 2>&1; do :; done ) &
    r2=$!
    sleep 0.5
    kill -TERM "$pid" 2>/dev/null
    gone=""
    for i in $(seq 1 100); do kill -0 "$pid" 2>/dev/null || { gone=yes; break; }; sleep 0.1; done
    expect_eq "SIGTERM under prefetching readers: the daemon ends within 10 s" yes "$gone"
    kill "$r1" "$r2" 2>/dev/null; wait "$r1" "$r2" 2>/dev/null
    grep -q " $mnt " /proc/mounts && umount -l "$mnt" 2>/dev/null
else
    fail "mount for the signal test"
fi

finish
