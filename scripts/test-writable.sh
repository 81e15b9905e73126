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
    release "$w" "$r" "$work/w2" "$work/ws" "$work/rr" "$small"
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

# ---- metadata: extended attributes and times (index fields only, no byte copied)
gx() { getfattr --only-values -n "$2" "$1" 2>/dev/null; }
eventually() { # eventually NAME EXPECTED COMMAND...: the command's output becomes EXPECTED (5 s)
    local name=$1 want=$2 got i; shift 2
    for i in $(seq 50); do got=$("$@" 2>/dev/null); [ "$got" == "$want" ] && { ok "$name"; return; }; sleep 0.1; done
    fail "$name" "expected [$want], got [$got]"
}
inode_before=$(stat -c %i "$v/consciousness/D01/region.mmap")
expect_eq "setfattr user.keywords" OK "$(errno_of setxattr "$D/layer-001" 'user.keywords=alpha,beta\,gamma')"
eventually "user.keywords committed (read-only mount)" 'alpha,beta\,gamma' gx "$R/layer-001" user.keywords
expect_eq "user.keywords: the index has the list" '["alpha", "beta,gamma"]' \
    "$(python3 -c 'import json,sys; print(json.dumps([l["keywords"] for l in json.load(open(sys.argv[1]))["layers"] if l["layer_id"] == 1][0]))' "$v/consciousness/D01/index.json")"
expect_eq "a metadata change copies no byte (region.mmap linked, same inode)" "$inode_before" "$(stat -c %i "$v/consciousness/D01/region.mmap")"
expect_eq "setfattr user.frequency" OK "$(errno_of setxattr "$D/layer-001" user.frequency=2.5)"
eventually "user.frequency committed" 2.5 gx "$R/layer-001" user.frequency
expect_eq "user.frequency not a number: EINVAL" EINVAL "$(errno_of setxattr "$D/layer-001" user.frequency=abc)"
expect_eq "user.frequency infinite: EINVAL" EINVAL "$(errno_of setxattr "$D/layer-001" user.frequency=inf)"
sum=$(gx "$R/layer-001" user.checksum)
expect_eq "user.checksum equal to the bytes' SHA-256: accepted" OK "$(errno_of setxattr "$D/layer-001" "user.checksum=$sum")"
expect_eq "user.checksum of other bytes: EINVAL" EINVAL "$(errno_of setxattr "$D/layer-001" "user.checksum=sha256:$(printf '0%.0s' $(seq 64))")"
expect_eq "user.layer_id equal: accepted" OK "$(errno_of setxattr "$D/layer-001" user.layer_id=1)"
expect_eq "user.layer_id contradicting: EINVAL" EINVAL "$(errno_of setxattr "$D/layer-001" user.layer_id=2)"
expect_eq "an attribute the format does not have: EOPNOTSUPP (ENOTSUP)" ENOTSUP "$(errno_of setxattr "$D/layer-001" user.color=red)"
expect_eq "removexattr user.keywords: back to none" OK "$(python3 -c 'import os,sys; os.removexattr(sys.argv[1], "user.keywords"); print("OK")' "$D/layer-001" 2>&1)"
eventually "user.keywords removed" "" gx "$R/layer-001" user.keywords
touch -m -d 2024-05-06T07:08:09Z "$D/layer-001"
eventually "touch -d of a layer: its updated_at (mtime on the read-only mount)" 1714979289 stat -c %Y "$R/layer-001"
expect_eq "touch -d of a layer: the index's updated_at" 2024-05-06T07:08:09Z \
    "$(python3 -c 'import json,sys; print([l["updated_at"] for l in json.load(open(sys.argv[1]))["layers"] if l["layer_id"] == 1][0])' "$v/consciousness/D01/index.json")"
expect_eq "setfattr user.dimension_name" OK "$(errno_of setxattr "$D" user.dimension_name=Feelings)"
eventually "user.dimension_name committed" Feelings gx "$R" user.dimension_name
expect_eq "setfattr user.created_at" OK "$(errno_of setxattr "$D" user.created_at=2020-01-02T03:04:05Z)"
eventually "user.created_at committed" 2020-01-02T03:04:05Z gx "$R" user.created_at
expect_eq "user.created_at not a time: EINVAL" EINVAL "$(errno_of setxattr "$D" user.created_at=yesterday)"
touch -m -d 2024-01-01T00:00:00Z "$D"
eventually "touch -d of a dimension directory: the index's updated_at" 2024-01-01T00:00:00Z gx "$R" user.updated_at
expect_eq "user.dimension_id equal: accepted" OK "$(errno_of setxattr "$D" user.dimension_id=1)"
expect_eq "user.dimension_id contradicting: EINVAL" EINVAL "$(errno_of setxattr "$D" user.dimension_id=7)"
count=$(gx "$R" user.layer_count); gen=$(gx "$R" user.generation)
expect_eq "user.layer_count equal: accepted" OK "$(errno_of setxattr "$D" "user.layer_count=$count")"
expect_eq "user.layer_count contradicting: EINVAL" EINVAL "$(errno_of setxattr "$D" "user.layer_count=$((count + 5))")"
expect_eq "user.generation equal: accepted" OK "$(errno_of setxattr "$D" "user.generation=$gen")"
expect_eq "user.generation contradicting: EINVAL" EINVAL "$(errno_of setxattr "$D" "user.generation=sha256:$(printf '1%.0s' $(seq 64))")"
for f in model/layer-*; do
    expect "after the metadata tests: $(basename "$f") has its bytes" cmp "$f" "$R/$(basename "$f")"
done
verify_clean "metadata"

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

# ---- SIGKILL of the daemon at random points of commits: the remounted volume always has a
# whole generation, at least the last one an fsync acknowledged
kills=${WRITABLE_KILLS:-50}
daemon_pid() { grep -o 'layerfs\[[0-9]*\]: mounted\|layerfs\[[0-9]*\] info: mounted' "$work/w.log" | tail -1 | tr -dc 0-9; }
bad_kills=0
for k in $(seq "$kills"); do
    pid=$(daemon_pid)
    rm -f acked
    python3 - "$D/layer-070" acked <<'PY' 2>/dev/null &
import os, sys
path, acked = sys.argv[1], sys.argv[2]
n = 0
while True:
    n += 1
    data = (("v%d " % n) * (1 + n % 5000)).encode()
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    os.write(fd, data)
    os.fsync(fd)
    os.close(fd)
    with open(acked, "w") as f:
        f.write(str(n))
PY
    writer=$!
    sleep "0.$(( RANDOM % 30 + 2 ))"
    kill -KILL "$pid"
    wait "$writer" 2>/dev/null
    umount -l "$w" 2>/dev/null
    mount_w
    got=$(python3 - "$D/layer-070" "$(cat acked 2>/dev/null || echo 0)" <<'PY'
import sys
data = open(sys.argv[1], "rb").read()
acked = int(sys.argv[2])
n = int(data.split(b" ", 1)[0][1:]) if data else 0
whole = data == (("v%d " % n) * (1 + n % 5000)).encode()
print("ok" if whole and n >= acked else "version %d (whole: %s), acknowledged %d" % (n, whole, acked))
PY
)
    if [ "$got" != ok ]; then bad_kills=$((bad_kills + 1)); echo "kill $k: $got" >&2; fi
done
expect_eq "$kills SIGKILLs during fsync'd commits: each remount has a whole generation, at least the last acknowledged" 0 "$bad_kills"
out=$("$layerfs" verify "$v" 2>&1)
expect_eq "after the kills: verify finds nothing but leftovers of killed commits" "" \
    "$(grep -v -e 'leftover of an interrupted update' -e 'layers hashed' -e '^note' <<<"$out" | head -3)"
rm -rf "$v"/consciousness/.D01.update-*

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

# ---- fio with verification, and a shared writable mapping
if command -v fio >/dev/null; then
    out=$(cd "$work" && fio --directory="$w/D05" --fallocate=none --verify=crc32c --do_verify=1 \
        --name=seq --filename=layer-101 --rw=write --bs=64k --size=8m \
        --name=rand --filename=layer-102 --rw=randwrite --bs=4k --size=2m \
        --name=rand2 --filename=layer-103 --rw=randwrite --bs=16k --size=4m 2>&1)
    expect_eq "fio: three jobs, err=0 each" 3 "$(grep -c 'err= 0' <<<"$out")"
    expect_eq "fio: no verify errors" 0 "$(grep -ci 'verify.*\(bad\|fail\|error\)' <<<"$out")"
    sha256sum "$w"/D05/layer-10[123] | awk '{print $1}' > fio.sums
    "$layerfs" unmount "$w"; mount_w
    expect_eq "fio: the layers read back identical after remount" "$(cat fio.sums)" "$(sha256sum "$w"/D05/layer-10[123] | awk '{print $1}')"
else
    skip "fio" "fio is not installed"
fi
python3 - "$D/layer-001" <<'PY'
import mmap, os, sys
fd = os.open(sys.argv[1], os.O_RDWR)
m = mmap.mmap(fd, 0, mmap.MAP_SHARED, mmap.PROT_READ | mmap.PROT_WRITE)
m[0:5] = b"MMAP!"
m.flush()           # msync: FUSE writes the pages back and fsyncs
m.close()
os.close(fd)
PY
printf 'MMAP!' | dd of=model/layer-001 conv=notrunc status=none
expect "shared writable mmap + msync commits like a write" visible "$R/layer-001" model/layer-001
verify_clean "fio and mmap"

# ---- a producer writes 200 layers while 8 readers hash layers on a read-only mount: every
# read matches the one content each layer ever has (never torn, never a mix)
expected_of() { python3 -c 'import sys,hashlib; i=int(sys.argv[1]); print(hashlib.sha256((("layer %d " % i) * (1 + i * 37 % 900)).encode()).hexdigest())' "$1"; }
python3 - "$w/D06" <<'PY' &
import os, sys
d = sys.argv[1]
for i in range(1, 201):
    with open(os.path.join(d, "layer-%03d" % i), "wb") as f:
        f.write((("layer %d " % i) * (1 + i * 37 % 900)).encode())
PY
producer=$!
for k in $(seq 8); do
    (
        bad=0 good=0
        while kill -0 "$producer" 2>/dev/null; do
            i=$(( (RANDOM % 200) + 1 )); f=$r/D06/$(printf 'layer-%03d' "$i")
            got=$(sha256sum "$f" 2>/dev/null | awk '{print $1}') || continue
            [ -z "$got" ] && continue
            if [ "$got" == "$(expected_of "$i")" ]; then good=$((good + 1)); else bad=$((bad + 1)); echo "reader $k: $f torn" >&2; fi
        done
        echo "$bad" > "$work/reader-$k.bad"
        echo "$good" > "$work/reader-$k.good"
    ) &
done
wait
expect_eq "8 readers during 200 commits: reads matching no generation" 0 "$(cat "$work"/reader-*.bad | paste -sd+ | bc)"
reads=$(cat "$work"/reader-*.good | paste -sd+ | bc)
if [ "$reads" -gt 0 ]; then ok "8 readers during 200 commits: $reads layers hashed while the producer wrote"; else fail "readers hashed no layer while the producer wrote"; fi
for i in 1 50 200; do
    f=$(printf 'layer-%03d' "$i")
    expect_eq "after the producer: $f on the read-only mount" "$(expected_of "$i")" "$(for t in $(seq 50); do s=$(sha256sum "$r/D06/$f" 2>/dev/null | awk '{print $1}'); [ "$s" == "$(expected_of "$i")" ] && break; sleep 0.1; done; echo "$s")"
done
verify_clean "readers during 200 commits"

# ---- two writable mounts and `layerfs update`, changing different layers of one dimension
mkdir -p "$work/w2"
"$layerfs" mount --writable "$v" "$work/w2" --log-file "$work/w2.log"
for who in a b c; do head -c $((3000 + ${#who} * 7)) /dev/urandom > "src-$who"; done
( for i in $(seq 301 320); do cp src-a "$w/D07/layer-$i"; done ) &
( for i in $(seq 401 420); do cp src-b "$work/w2/D07/layer-$i"; done ) &
( for i in $(seq 501 520); do "$layerfs" update "$v/consciousness/D07" --put "$i=src-c" >/dev/null || echo "update $i failed" >&2; done ) &
wait
"$layerfs" unmount "$work/w2"
"$layerfs" unmount "$w"
mount_w
missing=0
for i in $(seq 301 320); do cmp -s src-a "$D/../D07/layer-$i" || missing=$((missing + 1)); done
for i in $(seq 401 420); do cmp -s src-b "$w/D07/layer-$i" || missing=$((missing + 1)); done
for i in $(seq 501 520); do cmp -s src-c "$w/D07/layer-$i" || missing=$((missing + 1)); done
expect_eq "two writable mounts + update at once: every one of the 60 changes present" 0 "$missing"
verify_clean "two writable mounts and an update"

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
# The daemon lets go of the volume (its descriptor of the source) a moment after the unmount.
for i in $(seq 50); do umount "$small" 2>/dev/null && break; sleep 0.1; done

umount "$w"; umount "$r"
verify_clean "end"
# ---- restore: a backup taken off a read-only mount of a packed volume, copied back into an
# empty volume through a writable mount, gives back the same regions and indexes
src=$work/src
mkdir -p in1 in2
for i in 1 2 3 4 5 6 7; do head -c $((i * 5003 + 11)) /dev/urandom > in1/layer-00$i; done
: > in1/layer-008
for i in 1 2 3; do head -c $((i * 70001)) /dev/urandom > in2/layer-00$i; done
touch -d 2023-03-04T05:06:07Z in1/layer-003
"$layerfs" init "$src" >/dev/null
"$layerfs" pack --dimension 1 --time 2025-01-01T00:00:00Z in1 "$src/consciousness/D01" >/dev/null
"$layerfs" pack --dimension 2 --time 2025-02-01T00:00:00Z --name Second in2 "$src/consciousness/D02" >/dev/null
"$layerfs" pack --proto --time 2025-03-01T00:00:00Z in2 "$src/proto/draft" >/dev/null
"$layerfs" update "$src/consciousness/D01" --keywords 2=one,two --frequency 4=0.25 --time 2025-01-02T00:00:00Z >/dev/null
mkdir -p "$work/rr"
"$layerfs" mount "$src" "$work/rr" --log-file "$work/rr.log"
rsync -aX "$work/rr/" backup/
expect_eq "backup taken (rsync -aX off the read-only mount)" 0 $?
"$layerfs" unmount "$work/rr"
same_volume() { # same_volume NAME DEST: every region byte-identical, every index equal
    local name=$1 dst=$2 d problems=""
    for d in consciousness/D01 consciousness/D02 proto/draft; do
        cmp -s "$src/$d/region.mmap" "$dst/$d/region.mmap" || problems+="$d/region.mmap differs; "
        problems+=$(python3 - "$src/$d/index.json" "$dst/$d/index.json" <<'PY'
import json, sys
a, b = (json.load(open(p)) for p in sys.argv[1:3])
if a != b:
    keys = [k for k in set(a) | set(b) if k != "layers" and a.get(k) != b.get(k)]
    layers = [x.get("layer_id") for x, y in zip(a["layers"], b.get("layers", [])) if x != y]
    print("%s differs (fields %s, layers %s); " % (sys.argv[2].split("/", 3)[-1], keys, layers), end="")
PY
)
    done
    if [ -z "$problems" ]; then ok "$name"; else fail "$name" "$problems"; fi
}
restore_with() { # restore_with NAME COMMAND...: into an empty volume mounted writable
    local name=$1 dst=$work/dst-$1; shift
    mkdir -p "$dst/consciousness"
    "$layerfs" mount --writable "$dst" "$work/w2" --log-file "$work/w2.log"
    ( cd backup && "$@" ) > "$work/restore.out" 2>&1
    local rc=$?
    expect_eq "restore with $name: exit 0" 0 "$rc"
    [ $rc -ne 0 ] && head -5 "$work/restore.out"
    if [ "$name" == rsync ]; then
        # Right after the first: no file is sent again (a directory whose last commit is
        # still running may have its time or attributes set once more) ...
        expect_eq "a second rsync -aX transfers no file" "" "$(rsync -aXi "$work/backup/" "$work/w2/" | grep -v '^\.d' )"
        # ... and once the commits have settled, nothing at all.
        expect_eq "a third rsync -aX changes nothing" "" "$(rsync -aXi "$work/backup/" "$work/w2/" | grep -v '^\.d\.\.t\.\.\.\.\.\. \./$')"
    fi
    expect "restore with $name: layerfs unmount" "$layerfs" unmount "$work/w2"
    same_volume "restore with $name: regions byte-identical, indexes equal" "$dst"
    expect "restore with $name: verify clean" "$layerfs" verify "$dst"
}
mkdir -p "$work/w2"
restore_with rsync rsync -aX ./ "$work/w2/"
restore_with cp cp -a --preserve=xattr . "$work/w2/"
tar --xattrs --xattrs-include='user.*' -C backup -cf backup.tar .
restore_with tar tar --xattrs --xattrs-include='user.*' -xf "$work/backup.tar" -C "$work/w2"

finish
