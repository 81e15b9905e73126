#!/usr/bin/env bash
# Writable mounts (`layerfs mount --writable`): every operation through real tools, the data
# compared byte for byte with a model directory, `layerfs verify` clean after each group, and
# the errno of every refused operation; a read-only mount of the same volume sees the commits;
# fsync survives SIGKILL of the daemon; a clean unmount commits what is staged; commit
# failures (size limit, held lock, full filesystem) reach the caller and change nothing served.
# Usage: scripts/test-writable.sh LAYERFS
set -uo pipefail
layerfs=$(realpath "$1")
here=$(cd "$(dirname "$0")/.." && pwd)
source "$here/Tests/shell/lib.sh"

require_fuse "the writable mount tests"
work=$(mktemp -d /tmp/layerfs-writable-XXXXXX)
w=$work/w; r=$work/r; small=$work/small
mkdir -p "$w" "$r" "$small"
cleanup() {
    for x in "$w" "$r" "$work/w2" "$work/ws" "$work/rr" "$small"; do
        grep -q " $x " /proc/mounts && { umount "$x" 2>/dev/null || umount -l "$x"; }
    done
    rm -rf "$work"
}
trap cleanup EXIT
cd "$work" || exit 1

v=$work/vol
"$layerfs" init "$v" >/dev/null
mount_w() { "$layerfs" mount --writable "$v" "$w" --log-file "$work/w.log" "$@"; }
mount_r() { "$layerfs" mount "$v" "$r" --log-file "$work/r.log"; }

# errno_of OP ARGS...: runs one operation in Python and prints the errno's name (or OK).
errno_of() { python3 "$here/Tests/shell/fsop.py" "$@"; }
# visible PATH EXPECTED_FILE: waits (at most 5 s; the latency is measured in bench) until the
# read-only mount shows PATH with EXPECTED_FILE's bytes.
visible() {
    local i
    for i in $(seq 50); do cmp -s "$1" "$2" 2>/dev/null && return 0; sleep 0.1; done
    return 1
}
gone() {
    local i
    for i in $(seq 50); do [ ! -e "$1" ] && return 0; sleep 0.1; done
    return 1
}
verify_clean() {
    local out
    if out=$("$layerfs" verify "$v" 2>&1); then ok "$1: verify clean"; else fail "$1: verify" "$(head -3 <<<"$out" | paste -sd';')"; fi
}

# ---- mounting: which options make a mount writable
mkdir -p model
"$layerfs" mount "$v" "$w" -o rw --log-file "$work/w.log" 2>/dev/null
expect_eq "-o rw alone: still read-only (EROFS)" EROFS "$(errno_of create "$w/D01/layer-001")"
umount "$w"
"$layerfs" mount "$v" "$w" -o writable,ro --log-file "$work/w.log"
expect_eq "-o writable,ro: ro wins (EROFS)" EROFS "$(errno_of create "$w/D01/layer-001")"
umount "$w"
"$layerfs" mount "$v" "$w" -o ro,writable --log-file "$work/w.log"
expect_eq "-o ro,writable: ro wins (EROFS)" EROFS "$(errno_of create "$w/D01/layer-001")"
umount "$w"
expect "-o writable mounts" "$layerfs" mount "$v" "$w" -o writable --log-file "$work/w.log"
expect_eq "-o writable: create works" OK "$(errno_of create "$w/D01/layer-001")"
umount "$w"
mount_w
mount_r
expect_eq "read-only mount beside it: still EROFS" EROFS "$(errno_of create "$r/D02/layer-001")"
D=$w/D01; R=$r/D01

# ---- create, write, append, truncate, copy on write
head -c 300000 /dev/urandom > model/layer-001
cp model/layer-001 "$D/layer-001"
expect "cp into a new layer: the writable mount reads it back" cmp model/layer-001 "$D/layer-001"
expect "cp into a new layer: the read-only mount shows it" visible "$R/layer-001" model/layer-001
expect_eq "staged bytes are readable before close (same mount)" OK "$(errno_of write-then-read "$D/layer-002")"
printf 'staged' > model/layer-002
expect "the staged layer committed at close" visible "$R/layer-002" model/layer-002
printf 'tail\n' >> model/layer-002; printf 'tail\n' >> "$D/layer-002"
expect "append with >>" visible "$R/layer-002" model/layer-002
truncate -s 1000 model/layer-001; truncate -s 1000 "$D/layer-001"
expect "truncate -s (shrink, copy on write of a committed layer)" visible "$R/layer-001" model/layer-001
truncate -s 5000 model/layer-001; truncate -s 5000 "$D/layer-001"
expect "truncate -s (grow: zeros)" visible "$R/layer-001" model/layer-001
printf 'rewritten' > model/layer-001; : > "$D/layer-001"; printf 'rewritten' > "$D/layer-001"
expect "truncate and rewrite (> file)" visible "$R/layer-001" model/layer-001
head -c 200000 /dev/urandom > model/layer-003; cp model/layer-003 "$D/layer-003"
printf 'XYZ' | dd of=model/layer-003 bs=1 seek=100000 conv=notrunc status=none
printf 'XYZ' | dd of="$D/layer-003" bs=1 seek=100000 conv=notrunc status=none
expect "overwrite in the middle (dd conv=notrunc): copy on write keeps the rest" visible "$R/layer-003" model/layer-003
expect "the writable mount reads the same" cmp model/layer-003 "$D/layer-003"
python3 - "$D/layer-004" model/layer-004 <<'PY'
import os, sys
for p in sys.argv[1:]:
    with open(p, "wb") as f:
        for i in range(64):
            f.write(os.urandom(0) + bytes([i]) * 65536)
PY
expect "64 writes of 64 KiB" visible "$R/layer-004" model/layer-004
verify_clean "writes"

# ---- names
expect_eq "a non-canonical name: EINVAL (foo)" EINVAL "$(errno_of create "$D/foo")"
expect_eq "a non-canonical name: EINVAL (layer-1)" EINVAL "$(errno_of create "$D/layer-1")"
expect_eq "a non-canonical name: EINVAL (layer-0001)" EINVAL "$(errno_of create "$D/layer-0001")"
expect_eq "a non-canonical name: EINVAL (layer-000)" EINVAL "$(errno_of create "$D/layer-000")"
expect "the log says which names are accepted" grep -q "layers named layer-NNN" "$work/w.log"
expect_eq "layer-1000 is canonical" OK "$(errno_of create "$D/layer-1000")"
: > model/layer-1000
# Python's os.replace pattern: a hidden temporary file, fsync, rename over the layer.
head -c 40000 /dev/urandom > model/layer-005
python3 - "$D" "$work/model/layer-005" <<'PY'
import os, sys
d, src = sys.argv[1], sys.argv[2]
data = open(src, "rb").read()
tmp = os.path.join(d, ".layer-005.tmp")
with open(tmp, "wb") as f:
    f.write(data); f.flush(); os.fsync(f.fileno())
os.replace(tmp, os.path.join(d, "layer-005"))
PY
expect "os.replace of a hidden temp file over layer-005" visible "$R/layer-005" model/layer-005
expect "the scratch file is gone" test ! -e "$D/.layer-005.tmp"
expect "the read-only mount never showed the scratch file" test ! -e "$R/.layer-005.tmp"
printf 'scratch' > "$D/.notes"
expect "a scratch file reads back on the writable mount" grep -q scratch "$D/.notes"
expect "a scratch file is listed on the writable mount" bash -c "ls -A '$D' | grep -qx .notes"
sleep 0.3
expect "a scratch file is never committed" test ! -e "$R/.notes"
mv "$D/layer-002" "$D/layer-020"; mv model/layer-002 model/layer-020
expect "rename within a dimension changes the id (new id)" visible "$R/layer-020" model/layer-020
expect "rename within a dimension changes the id (old id gone)" gone "$R/layer-002"
expect_eq "rename across dimensions: EXDEV" EXDEV "$(errno_of rename "$D/layer-020" "$w/D02/layer-001")"
mv "$D/layer-020" "$w/D02/layer-001"
expect "mv across dimensions copies (new place)" visible "$r/D02/layer-001" model/layer-020
expect "mv across dimensions copies (old place gone)" gone "$R/layer-020"
rm model/layer-020
expect_eq "RENAME_NOREPLACE over an existing layer: EEXIST" EEXIST "$(errno_of rename-noreplace "$D/layer-003" "$D/layer-004")"
expect_eq "RENAME_NOREPLACE to a free name" OK "$(errno_of rename-noreplace "$D/layer-1000" "$D/layer-999")"
mv model/layer-1000 model/layer-999
expect_eq "RENAME_EXCHANGE of two layers" OK "$(errno_of rename-exchange "$D/layer-003" "$D/layer-004")"
mv model/layer-003 model/x; mv model/layer-004 model/layer-003; mv model/x model/layer-004
expect "RENAME_EXCHANGE: both swapped (3)" visible "$R/layer-003" model/layer-003
expect "RENAME_EXCHANGE: both swapped (4)" visible "$R/layer-004" model/layer-004
expect_eq "RENAME_EXCHANGE with a missing target: ENOENT" ENOENT "$(errno_of rename-exchange "$D/layer-003" "$D/layer-777")"
expect_eq "rename to a bad name: EINVAL" EINVAL "$(errno_of rename "$D/layer-003" "$D/three")"
rm "$D/layer-999"; rm model/layer-999
expect "unlink deletes a layer" gone "$R/layer-999"
expect_eq "unlink of a missing layer: ENOENT" ENOENT "$(errno_of unlink "$D/layer-888")"
rm "$D/.notes"
expect "unlink of a scratch file" test ! -e "$D/.notes"
expect_eq "link: EPERM" EPERM "$(errno_of link "$D/layer-001" "$D/layer-050")"
expect_eq "symlink: EPERM" EPERM "$(errno_of symlink layer-001 "$D/layer-051")"
expect_eq "mknod (FIFO): EPERM" EPERM "$(errno_of mkfifo "$D/.fifo")"
expect_eq "chmod to another mode: EPERM" EPERM "$(errno_of chmod "$D/layer-001" 0600)"
expect_eq "chmod to the mode shown: accepted" OK "$(errno_of chmod "$D/layer-001" "$(stat -c %a "$D/layer-001")")"
expect_eq "chown to another owner: EPERM" EPERM "$(errno_of chown "$D/layer-001" 4242)"
expect_eq "mkdir inside a dimension: EPERM" EPERM "$(errno_of mkdir "$D/sub")"
expect_eq "mkdir of a bad dimension name: EINVAL" EINVAL "$(errno_of mkdir "$w/foo")"
expect_eq "mkdir D20" OK "$(errno_of mkdir "$w/D20")"
expect_eq "mkdir of an existing dimension: EEXIST" EEXIST "$(errno_of mkdir "$w/D20")"
expect_eq "mkdir proto/draft" OK "$(errno_of mkdir "$w/proto/draft")"
printf 'draft one' > model/draft-1; cp model/draft-1 "$w/proto/draft/layer-001"
expect "a layer in a new proto dimension" visible "$r/proto/draft/layer-001" model/draft-1
expect_eq "rmdir of a dimension with layers: ENOTEMPTY" ENOTEMPTY "$(errno_of rmdir "$w/proto/draft")"
expect_eq "rmdir of an empty dimension" OK "$(errno_of rmdir "$w/D20")"
expect "the removed dimension is gone from the read-only mount" gone "$r/D20"
rm "$w/proto/draft/layer-001"
expect "the last layer of proto/draft deleted" gone "$r/proto/draft/layer-001"
expect_eq "rmdir of the emptied proto dimension" OK "$(errno_of rmdir "$w/proto/draft")"
for f in model/layer-*; do
    expect "after the name tests: $(basename "$f") as the model has it" cmp "$f" "$R/$(basename "$f")"
done
expect_eq "after the name tests: the read-only mount lists exactly the model" "$(ls model | grep '^layer-' | paste -sd' ')" "$(ls "$R" | paste -sd' ')"
verify_clean "names"

# ---- durability: fsync, then SIGKILL of the daemon
pid=$(grep -o 'layerfs\[[0-9]*\]' "$work/w.log" | tail -1 | tr -dc 0-9)
head -c 123457 /dev/urandom > model/layer-060
expect_eq "fsync of a new layer" OK "$(errno_of write-fsync "$D/layer-060" model/layer-060)"
kill -KILL "$pid"
umount -l "$w" 2>/dev/null
sleep 0.2
mount_w
expect "after fsync and SIGKILL, the remounted volume has the layer" cmp model/layer-060 "$D/layer-060"
verify_clean "fsync + SIGKILL"

# ---- a clean unmount commits what is staged, and drops scratch files
head -c 5555 /dev/urandom > model/layer-061
python3 - "$D" <<'PY'
import sys
d = sys.argv[1]
open(d + "/layer-061", "wb").write(open("model/layer-061", "rb").read())
open(d + "/.scratch", "wb").write(b"never a layer")
PY
expect "layerfs unmount right after the close" "$layerfs" unmount "$w"
mount_w
expect "the change closed just before the unmount is there" cmp model/layer-061 "$D/layer-061"
expect "the scratch file is gone after the remount" test ! -e "$D/.scratch"
expect_eq "no staging files left in temp/" "" "$(find "$v/temp" -name '.layerfs-staging-*' | head -1)"
verify_clean "unmount"

# ---- a commit that fails: over the region size limit (EFBIG)
umount "$w"
"$layerfs" mount --writable "$v" "$w" -o max_region_size=64K --log-file "$work/w.log"
expect_eq "a write past max_region_size: EFBIG" EFBIG "$(errno_of write-size "$w/D03/layer-001" 70000)"
head -c 40000 /dev/urandom > model/d3-1
expect_eq "fsync of a first 40 KB layer under a 64 KiB limit" OK "$(errno_of write-fsync "$w/D03/layer-001" model/d3-1)"
head -c 40000 /dev/urandom > model/d3-2
expect_eq "fsync of a second one: the region would pass the limit: EFBIG" EFBIG "$(errno_of write-fsync "$w/D03/layer-002" model/d3-2)"
expect "the failure is logged" grep -q "commit of .* failed (tooLarge)" "$work/w.log"
expect "the served generation is untouched (no layer-002)" test ! -e "$r/D03/layer-002"
expect "the served generation is untouched (layer-001)" visible "$r/D03/layer-001" model/d3-1
expect "the staged bytes are kept" cmp model/d3-2 "$w/D03/layer-002"
expect_eq "a later fsync retries and fails again" EFBIG "$(errno_of fsync "$w/D03/layer-002")"
rm "$w/D03/layer-002"
umount "$w"
mount_w
verify_clean "EFBIG"

# ---- a commit that fails: another writer holds the lock past the commit's wait (EBUSY)
flock "$v/consciousness/.D04.lock" sleep 13 &
holder=$!
sleep 0.3
printf 'locked out' > model/d4
expect_eq "fsync while another writer holds the lock: EBUSY (after 10 s)" EBUSY "$(errno_of write-fsync "$w/D04/layer-001" model/d4)"
expect "nothing served changed" test ! -e "$r/D04/layer-001"
wait "$holder"
expect_eq "once the lock is free, fsync commits the kept bytes" OK "$(errno_of fsync "$w/D04/layer-001")"
expect "and the read-only mount shows them" visible "$r/D04/layer-001" model/d4
verify_clean "EBUSY"

# ---- a full filesystem: the writer gets ENOSPC, nothing served changes
mount -t tmpfs -o size=2m tmpfs "$small"
"$layerfs" init "$small/vol" >/dev/null
mkdir -p "$work/ws"
"$layerfs" mount --writable "$small/vol" "$work/ws" --log-file "$work/ws.log"
printf 'small' > "$work/ws/D01/layer-001"
sync
expect_eq "writing 3 MB on a 2 MB filesystem: ENOSPC" ENOSPC "$(errno_of write-size "$work/ws/D01/layer-002" 3000000)"
rm -f "$work/ws/D01/layer-002"
expect "the earlier layer is intact" grep -qx small "$work/ws/D01/layer-001"
umount "$work/ws"
expect "the small volume verifies" "$layerfs" verify "$small/vol"
umount "$small"

umount "$w"; umount "$r"
verify_clean "end"
finish
