#!/usr/bin/env bash
# Live updates and hostile input, on real mounts: a writer replaces a dimension 100 times
# (both writing procedures) under 8 readers; truncation and overwrite in place under the
# mount; a half-written update; a pack killed mid-write.
# Usage: scripts/test-live.sh LAYERFS [UPDATES]
set -uo pipefail
layerfs=$(realpath "$1")
updates=${2:-100}
here=$(cd "$(dirname "$0")/.." && pwd)
source "$here/Tests/shell/lib.sh"

require_fuse "the live-update tests"
work=$(mktemp -d /tmp/layerfs-live-XXXXXX)
m=$work/mnt; mkdir -p "$m"
cleanup() {
    release "$m" "$work/mnt-many"
    rm -rf "$work"
}
trap cleanup EXIT
mounted() { grep -q " $m fuse.layerfs " /proc/mounts; }
daemon_alive() { pgrep -f -- "layerfs mount .*$m\$" >/dev/null; }

v=$work/vol
"$layerfs" init "$v" >/dev/null
# generation G of D01: 16 layers whose bytes say which generation they belong to.
make_input() {
    local dir=$1 gen=$2
    rm -rf "$dir"; mkdir -p "$dir"
    for i in $(seq -w 1 16); do
        { echo "generation $gen layer $i"; head -c $(( (10#$i * 7919 + gen * 131) % 60000 )) /dev/zero | tr '\0' "$(printf "\\$(printf '%03o' $(( 65 + gen % 26 )))")"; } > "$dir/layer-0$i"
    done
}
make_input "$work/in" 0
"$layerfs" pack --dimension 1 "$work/in" "$v/consciousness/D01" >/dev/null
"$layerfs" mount --log-file "$work/daemon.log" "$v" "$m"

# ---- stress: 8 readers while the dimension is replaced $updates times
python3 "$here/Tests/shell/stress_readers.py" "$m/D01" 8 2 /nonexistent "generation 0" > "$work/quiet.txt" 2>"$work/quiet.err"
quiet=$(sed -E 's/.*reads=([0-9]+).*/\1/' "$work/quiet.txt")
python3 "$here/Tests/shell/stress_readers.py" "$m/D01" 8 600 "$work/stop" "generation $updates" > "$work/stress.txt" 2>"$work/stress.err" &
readers=$!
sleep 0.5
start=$(date +%s.%N)
for g in $(seq 1 "$updates"); do
    make_input "$work/in" "$g"
    mode=""; [ $((g % 2)) -eq 0 ] && mode=--file-by-file
    "$layerfs" pack --dimension 1 $mode "$work/in" "$v/consciousness/D01" >/dev/null || echo "pack $g failed"
done
elapsed=$(echo "$(date +%s.%N) - $start" | bc)
touch "$work/stop"
wait $readers
result=$(cat "$work/stress.txt")
echo "  quiet mount: $quiet reads in 2 s by 8 readers; during $updates updates: $result in ${elapsed}s"
head -5 "$work/stress.err"
expect_eq "stress: 0 mismatches" "0" "$(sed -E 's/.*mismatches=([0-9]+).*/\1/' <<<"$result")"
expect_eq "stress: 0 read errors" "0" "$(sed -E 's/.*errors=([0-9]+).*/\1/' <<<"$result")"
expect_eq "stress: every reader sees the last generation" "8/8" "$(sed -E 's/.*final_ok=([0-9/]+).*/\1/' <<<"$result")"
expect "stress: daemon alive" daemon_alive
expect_eq "user.generation is the served region checksum" \
    "$(python3 -c "import json;print(json.load(open('$v/consciousness/D01/index.json'))['region_checksum'])")" \
    "$(getfattr --absolute-names --only-values -n user.generation "$m/D01")"
expect "no leftover pack directories" "$layerfs" verify "$v"

# ---- a half-written update (file-by-file stopped between the two renames)
make_input "$work/in" 500
"$layerfs" pack --dimension 1 "$work/in" "$work/scratch/consciousness/D01" >/dev/null
cp "$work/scratch/consciousness/D01/region.mmap" "$v/consciousness/D01/.region.tmp"
mv "$v/consciousness/D01/.region.tmp" "$v/consciousness/D01/region.mmap"
sleep 1
expect "half-written: the old generation is still served" grep -q "generation $updates" "$m/D01/layer-001"
expect "half-written: user.error says why the new files are not served" bash -c \
    "getfattr --absolute-names --only-values -n user.error '$m/D01' | grep -q 'newest files not served: consciousness/D01/index.json'"
cp "$work/scratch/consciousness/D01/index.json" "$v/consciousness/D01/.index.tmp"
mv "$v/consciousness/D01/.index.tmp" "$v/consciousness/D01/index.json"
sleep 1
expect "half-written: completed, the new generation is served" grep -q "generation 500" "$m/D01/layer-001"

# ---- overwrite in place (same size) under the mount: EIO, daemon alive, recovery
make_input "$work/in" 600
"$layerfs" pack --dimension 1 "$work/in" "$v/consciousness/D01" >/dev/null; sleep 1
off=$(python3 -c "import json;print([l for l in json.load(open('$v/consciousness/D01/index.json'))['layers'] if l['layer_id']==9][0]['offset'])")
dd if=/dev/urandom of="$v/consciousness/D01/region.mmap" bs=1 seek="$off" count=64 conv=notrunc 2>/dev/null
sleep 1
expect_fail "overwrite in place: reads answer EIO" "Input/output error" cat "$m/D01/layer-009"
expect "overwrite in place: daemon alive" daemon_alive
make_input "$work/in" 700
"$layerfs" pack --dimension 1 "$work/in" "$v/consciousness/D01" >/dev/null; sleep 1
expect "overwrite in place: recovers with the next generation" grep -q "generation 700" "$m/D01/layer-009"

# ---- truncate in place under the mount: EIO for the bytes that are gone, no crash, recovery
truncate -s 8192 "$v/consciousness/D01/region.mmap"
sleep 1
expect_fail "truncate in place: reads answer EIO" "Input/output error" cat "$m/D01/layer-016"
expect "truncate in place: daemon alive" daemon_alive
expect "truncate in place: the mount still answers" ls "$m/D01"
make_input "$work/in" 800
"$layerfs" pack --dimension 1 "$work/in" "$v/consciousness/D01" >/dev/null; sleep 1
expect "truncate in place: recovers with the next generation" grep -q "generation 800" "$m/D01/layer-016"

# ---- pack killed mid-write: the old volume is intact and served; verify reports the leftover
mkdir -p "$work/big"; truncate -s 3G "$work/big/layer-001"
timeout -s KILL 0.5 "$layerfs" pack --force --dimension 1 "$work/big" "$v/consciousness/D01" >/dev/null 2>&1
expect "killed pack: old generation still served" grep -q "generation 800" "$m/D01/layer-016"
expect "killed pack: old files intact" "$layerfs" verify "$v/consciousness/D01"
expect_fail "killed pack: verify reports the leftover" "\.D01\.pack-.*leftover" "$layerfs" verify "$v"
rm -rf "$v"/consciousness/.D01.pack-*

# ---- a dimension that appears, and one that goes away, without remount
"$layerfs" pack --dimension 20 "$work/in" "$v/consciousness/D20" >/dev/null; sleep 1
expect "new dimension appears" grep -q "generation 800" "$m/D20/layer-001"
# A process inside it: its cwd's directory answers ENOENT once it is gone (no empty
# directory owned by root dated 1970), and a name looked up in vain before is found once the
# dimension comes back with it (no negative entry survives the return).
expect_fail "lookup of a layer not there yet" "No such file" cat "$m/D20/layer-017"
python3 - "$m/D20" "$v/consciousness/D20" "$work/inside.txt" <<'PY' &
import os, sys, time
os.chdir(sys.argv[1])
while os.path.exists(sys.argv[2]): time.sleep(0.05)
time.sleep(1.5)
out = []
for name, call in [("stat", lambda: os.stat(".")), ("listdir", lambda: os.listdir(".")),
                   ("getxattr", lambda: os.getxattr(".", "user.layer_count"))]:
    try:
        call(); out.append(name + "=ok")
    except OSError as e:
        out.append(name + "=" + (os.strerror(e.errno)))
open(sys.argv[3], "w").write(" ".join(out) + "\n")
# Stay inside (the old directory stays pinned) until the dimension is back and checked.
while not os.path.exists(sys.argv[3] + ".done"): time.sleep(0.05)
PY
inside=$!
sleep 0.5
rm -rf "$v/consciousness/D20"; sleep 1
expect_fail "removed dimension disappears" "No such file" ls "$m/D20"
for _ in $(seq 50); do [ -s "$work/inside.txt" ] && break; sleep 0.1; done
expect_eq "removed dimension: stat, listdir, getxattr of its open directory answer ENOENT" \
    "stat=No such file or directory listdir=No such file or directory getxattr=No such file or directory" "$(cat "$work/inside.txt")"
cp -r "$work/in" "$work/in17"; cp "$work/in/layer-001" "$work/in17/layer-017"
"$layerfs" pack --dimension 20 "$work/in17" "$v/consciousness/D20" >/dev/null; sleep 1
expect "dimension back (old directory still pinned): a layer looked up in vain before is found" grep -q "generation 800" "$m/D20/layer-017"
touch "$work/inside.txt.done"; wait $inside

expect "daemon alive at the end" daemon_alive
expect "unmount" "$layerfs" unmount "$m"

# ---- thousands of dimensions, served by a daemon started under a soft limit of 1024 files
k=$work/many; mkdir -p "$k/consciousness" "$work/mnt-many"
python3 -c "
import sys; sys.path.insert(0, '$here/scripts')
import bench_volume
for d in range(1, 2001):
    bench_volume.dimension('$k/consciousness/D%02d' % d, d, 2, 100, '2024-01-01T00:00:00Z')
"
(ulimit -Sn 1024; "$layerfs" mount "$k" "$work/mnt-many")
expect_eq "2000 dimensions listed" "2000" "$(ls "$work/mnt-many" | wc -l)"
bad=0
for d in "$work/mnt-many"/D*; do cat "$d/layer-002" >/dev/null 2>&1 || bad=$((bad + 1)); done
expect_eq "every one of 2000 dimensions serves (fd limit raised)" "0" "$bad"
expect "unmount the 2000-dimension volume" "$layerfs" unmount "$work/mnt-many"
finish
