#!/usr/bin/env bash
# Jessy's legacy regions (issue 12), on real mounts: fixtures of both layouts written by an
# independent writer (Tests/shell/jessy_writer.py, from the layouts' description, not from
# layerfs's reader), mounted and compared byte for byte and attribute by attribute; `layerfs
# import` and a mount of its result compared the same way; every bad-file case named by
# file and field while the other dimensions serve; a region rewritten in place under the mount.
# Usage: scripts/test-legacy.sh LAYERFS
set -uo pipefail
layerfs=$(realpath "$1")
here=$(cd "$(dirname "$0")/.." && pwd)
source "$here/Tests/shell/lib.sh"
writer="$here/Tests/shell/jessy_writer.py"

require_fuse "the legacy region tests"

work=$(mktemp -d /tmp/layerfs-legacy-XXXXXX)
cleanup() {
    release "${mounts[@]}"
    rm -rf "$work"
}
trap cleanup EXIT
# The source tree's bytes, names, modes and mtimes: import must leave it exactly so.
tree_state() { (cd "$1" && find . -printf '%p %y %m %s %T@\n' | sort && find . -type f -print0 | sort -z | xargs -0 sha256sum); }

# compare MOUNT EXPECTED DIM [v1]: the mount's DIM against what the writer says it must show:
# the files (names and bytes), each layer's attributes (names and values), mtimes of layers
# that have last_accessed, and the directory's attributes. With v1 (a mount of an imported
# volume), the Jessy-only attributes are absent and user.format too. Prints "ok" or the
# differences.
compare() {
    python3 - "$@" <<'EOF'
import json, os, sys
mount, expected, dim = sys.argv[1:4]
v1 = len(sys.argv) > 4
attrs = json.load(open(os.path.join(expected, "attrs.json")))[dim]
problems = []
d = os.path.join(mount, dim)
files = sorted(attrs["layers"])
if sorted(os.listdir(d)) != files:
    problems.append(f"listing {sorted(os.listdir(d))[:5]}... != {files[:5]}...")
def xattrs(path):
    return {n: os.getxattr(path, n).decode("utf-8") for n in os.listxattr(path)}
jessy_only = {"user.name", "user.depth", "user.parent", "user.children"}
for f in files:
    p = os.path.join(d, f)
    want = dict(attrs["layers"][f])
    mtime = want.pop("mtime", None)
    if v1:
        want = {k: v for k, v in want.items() if k not in jessy_only}
    if open(p, "rb").read() != open(os.path.join(expected, dim, f), "rb").read():
        problems.append(f"{f}: bytes differ")
    got = xattrs(p)
    if got != want:
        problems.append(f"{f}: xattrs {got} != {want}")
    if mtime is not None and int(os.stat(p).st_mtime) != mtime:
        problems.append(f"{f}: mtime {int(os.stat(p).st_mtime)} != {mtime}")
got = xattrs(d)
for k in ("user.dimension_id", "user.dimension_name", "user.layer_count"):
    if got.get(k) != attrs[k]:
        problems.append(f"{dim} {k}: {got.get(k)} != {attrs[k]}")
if v1:
    if "user.format" in got or "user.warning" in got:
        problems.append(f"{dim}: a v1 dimension shows {sorted(got)}")
else:
    if got.get("user.format") != attrs["user.format"]:
        problems.append(f"{dim} user.format: {got.get('user.format')} != {attrs['user.format']}")
    if got.get("user.generation") != attrs["user.generation"]:
        problems.append(f"{dim} user.generation: {got.get('user.generation')} != {attrs['user.generation']}")
    if attrs["overflow"] != ("user.warning" in got):
        problems.append(f"{dim}: overflow {attrs['overflow']} but attributes {sorted(got)}")
    if attrs["overflow"] and "metadata" not in got.get("user.warning", ""):
        problems.append(f"{dim}: user.warning does not name the field: {got.get('user.warning')}")
    if "user.error" in got:
        problems.append(f"{dim}: user.error {got['user.error']}")
if "user.created_at_epoch" in attrs:
    import datetime
    want = datetime.datetime.fromtimestamp(attrs["user.created_at_epoch"], datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    if got.get("user.created_at") != want:
        problems.append(f"{dim} user.created_at: {got.get('user.created_at')} != {want}")
print("ok" if not problems else "\n".join(problems[:10]))
EOF
}

# ---- fixtures: JSON layout (1 layer, 3 layers, 500 layers overflowing the header) under
# consciousness/, text layout (1 layer; 12 with non-ASCII and empty ones) straight under the base
v=$work/vol
expected=$work/expected
python3 "$writer" fixtures "$v" "$expected"
expect "the 500-layer fixture overflows the 1024-byte header, as Jessy writes it" \
    python3 -c 'import sys; d = open(sys.argv[1], "rb").read(1024); sys.exit(0 if b"\0" not in d[4:] else 1)' "$v/consciousness/D02/region.mmap"
expect "the 1-layer JSON fixture fits its header" \
    python3 -c 'import sys; d = open(sys.argv[1], "rb").read(1024); sys.exit(0 if d[-1] == 0 else 1)' "$v/consciousness/D01/region.mmap"
expect "the text fixture has multi-byte characters" grep -q 'é' "$v/D05/region.mmap"

# ---- info and verify on the legacy volume
info=$("$layerfs" info "$v" 2>"$work/info.err")
expect_eq "info: exit 0 on a legacy volume" "0" "$?"
expect_eq "info: each dimension's layout and no checksums" \
    "consciousness/D01 jessy-json|consciousness/D02 jessy-json|consciousness/D03 jessy-json|D04 jessy-text|D05 jessy-text" \
    "$(awk '$1 ~ /D0/ && /no checksums/ {print $1, substr($0, index($0, "(jessy") + 1, 10)}' <<<"$info" | paste -sd'|')"
expect_eq "info: the overflowed region is marked recovered" "consciousness/D02" "$(grep 'recovered' <<<"$info" | awk '{print $1}')"
expect "info: the recovery warning names file and field" grep -q '^layerfs: warning: consciousness/D02/region.mmap: metadata: .*overflow\|^layerfs: warning: consciousness/D02/region.mmap: metadata: .*short by' "$work/info.err"
expect_eq "info --json: format, checksums, warnings of a legacy dimension" "jessy-json False 1 jessy-text 0" \
    "$("$layerfs" info --json "$v" 2>/dev/null | python3 -c '
import json, sys
j = json.load(sys.stdin)
d = {x["path"]: x for x in j["dimensions"]}
print(d["consciousness/D02"]["format"], d["consciousness/D02"]["checksums"], len(d["consciousness/D02"]["warnings"]), d["D05"]["format"], len(d["D05"]["warnings"]))')"
verify=$("$layerfs" verify "$v" 2>&1)
expect_eq "verify: exit 0 on a legacy volume" "0" "$?"
expect_eq "verify: a note per dimension naming layout and no checksums" "5" "$(grep -c 'note: Jessy legacy region (jessy-.*no checksums' <<<"$verify")"
expect_eq "verify: the recovery as a warning naming file and field" "1" "$(grep -c '^consciousness/D02/region.mmap: warning: metadata: ' <<<"$verify")"
expect_eq "verify of one legacy dimension" "0" "$("$layerfs" verify "$v/D05" >/dev/null 2>&1; echo $?)"

# ---- mount it as it is
m=$(mnt_new 1)
expect "mount a legacy volume" "$layerfs" mount "$v" "$m"
expect_eq "root lists the dimensions of both places" "D01 D02 D03 D04 D05" "$(ls "$m" | xargs)"
for dim in D01 D02 D03 D04 D05; do
    expect_eq "mount: $dim: every byte and attribute" "ok" "$(compare "$m" "$expected" "$dim")"
done
expect_eq "mount: 500 layers listed" "500" "$(ls "$m/D02" | wc -l)"
expect_eq "mount: an empty layer is an empty file" "0" "$(stat -c %s "$m/D02/layer-004")"
expect_eq "mount: Jessy's layer 0 is layer-001" "1" "$(getfattr --only-values -n user.layer_id "$m/D01/layer-001")"
expect "mount: sha256sum -c with verify --print-sums of the legacy dimension" \
    bash -c 'cd "$2/D02" && "$1" verify --print-sums "$3/consciousness/D02" | sha256sum -c --quiet' _ "$layerfs" "$m" "$v"
expect_eq "mount: user.parent names the parent's file on the mount" "$(cat "$m/D02/layer-002")" \
    "$(cat "$m/$(getfattr --only-values -n user.parent "$m/D02/layer-004")" 2>/dev/null; true)" # layer 3's parent is layer 1
expect "mount: files are read-only" bash -c '! echo x 2>/dev/null > "$1/D01/layer-001"' _ "$m"
expect "unmount" "$layerfs" unmount "$m"

# ---- --verify-reads: the checksums computed at load are what reads are checked against
m=$(mnt_new 2)
expect "mount --verify-reads" "$layerfs" mount --verify-reads "$v" "$m"
expect "--verify-reads: every layer of every dimension reads" bash -c 'cat "$1"/D0*/layer-* >/dev/null' _ "$m"
expect "unmount --verify-reads" "$layerfs" unmount "$m"

# ---- import, then verify and mount the result
before=$(tree_state "$v")
d=$work/dest
out=$("$layerfs" import "$v" "$d" 2>&1)
expect_eq "import: exit 0" "0" "$?"
expect_eq "import: says what it did with each dimension" "5" "$(grep -c 'converted from jessy-' <<<"$out")"
expect_eq "import: the recovery warning" "1" "$(grep -c 'warning: consciousness/D02/region.mmap: metadata' <<<"$out")"
expect_eq "import: SOURCE_BASE untouched (names, modes, sizes, mtimes, bytes)" "$before" "$(tree_state "$v")"
expect_eq "import: verify on the result is clean" "0" "$("$layerfs" verify -q "$d" >/dev/null 2>&1; echo $?)"
expect_eq "import: text-layout dimensions land in consciousness/" "D01 D02 D03 D04 D05" "$(ls "$d/consciousness" | xargs)"
expect_eq "import: Jessy's fields kept as the unknown index field 'jessy'" \
    "{'dimension': 2, 'layer': 2} Layer 2 — many {'dimension': 2, 'layer': 0} 1700000122 6 jessy-json" \
    "$(python3 -c '
import json, sys
j = json.load(open(sys.argv[1]))
l = [x for x in j["layers"] if x["layer_id"] == 3][0]["jessy"]
print(l["layer_id"], l["name"], l["parent"], l["last_accessed"], l["access_count"], j["jessy"]["layout"])' "$d/consciousness/D02/index.json")"
expect_eq "import: layers laid out as pack lays them out (4096-aligned, ascending ids)" "ok" "$(python3 -c '
import json, sys
j = json.load(open(sys.argv[1]))
ls = sorted(j["layers"], key=lambda l: l["layer_id"])
assert ls[0]["offset"] == 4096 and all(l["offset"] % 4096 == 0 for l in ls)
assert all(a["offset"] + a["size"] <= b["offset"] for a, b in zip(ls, ls[1:]))
print("ok")' "$d/consciousness/D02/index.json")"
m=$(mnt_new 3)
expect "mount the imported volume" "$layerfs" mount "$d" "$m"
for dim in D01 D02 D03 D04 D05; do
    expect_eq "import: $dim: every byte and attribute as on the legacy mount" "ok" "$(compare "$m" "$expected" "$dim" v1)"
done
expect "unmount the imported volume" "$layerfs" unmount "$m"

# ---- import: --dimension, v1 copied unchanged, layers/ packed, refusals
s=$work/mixed
"$layerfs" init --sample "$s" >/dev/null
cp -r "$v/consciousness/D02" "$s/consciousness/D15"
python3 - "$s/consciousness/D15/region.mmap" <<'EOF'
import sys
# D02's 500 layers as dimension 15: only layer_id.dimension changes, so the recovery still holds.
p = sys.argv[1]
d = open(p, "rb").read()
open(p, "wb").write(d.replace(b'"layer_id":{"dimension":2,', b'"layer_id":{"dimension":15,').replace(b'{"dimension":2,"layer"', b'{"dimension":15,"layer"'))
EOF
mkdir -p "$s/consciousness/D16/layers"
printf 'first\n' > "$s/consciousness/D16/layers/layer-001"
printf 'dritte ü\n' > "$s/consciousness/D16/layers/layer-003"
before=$(tree_state "$s")
d2=$work/dest2
expect "import --dimension 3 --dimension 15 --dimension 16" "$layerfs" import --dimension 3 --dimension 15 --dimension 16 "$s" "$d2"
expect_eq "import --dimension: only those" "D03 D15 D16" "$(ls "$d2/consciousness" | xargs)"
expect "import: a v1 dimension is copied byte for byte (region)" cmp "$s/consciousness/D03/region.mmap" "$d2/consciousness/D03/region.mmap"
expect "import: a v1 dimension is copied byte for byte (index)" cmp "$s/consciousness/D03/index.json" "$d2/consciousness/D03/index.json"
expect_eq "import: a layers/-only dimension is packed from it" "1 3" "$(python3 -c '
import json, sys; print(*sorted(l["layer_id"] for l in json.load(open(sys.argv[1]))["layers"]))' "$d2/consciousness/D16/index.json")"
expect_eq "import: the mixed volume's result verifies clean" "0" "$("$layerfs" verify -q "$d2" >/dev/null 2>&1; echo $?)"
expect_eq "import: mixed SOURCE_BASE untouched" "$before" "$(tree_state "$s")"
expect "import: the rest of the volume" "$layerfs" import "$s" "$work/dest3"
expect_eq "import: every dimension of the mixed volume" "$(ls "$s/consciousness" | xargs)" "$(ls "$work/dest3/consciousness" | xargs)"
expect_eq "import: proto dimensions too" "$(ls "$s/proto" 2>/dev/null | xargs)" "$(ls "$work/dest3/proto" 2>/dev/null | xargs)"
expect_eq "import: the whole mixed volume verifies clean" "0" "$("$layerfs" verify -q "$work/dest3" >/dev/null 2>&1; echo $?)"
expect_fail "import: an existing destination dimension is refused, by name" "consciousness/D03: exists already" \
    "$layerfs" import --dimension 3 "$s" "$d2"
expect_fail "import: never into SOURCE_BASE" "lies inside SOURCE_BASE" "$layerfs" import "$s" "$s/out"
expect_fail "import: not onto SOURCE_BASE itself" "lies inside SOURCE_BASE" "$layerfs" import "$s" "$s/"
expect_fail "import: --dimension absent from the source" "has no dimension D42" "$layerfs" import --dimension 42 "$s" "$work/dest4"
expect_eq "import: nothing was written under SOURCE_BASE by the refusals" "$before" "$(tree_state "$s")"

# ---- bad legacy files: each fails its own dimension with file and field; D01 still serves
b=$work/bad
mkdir -p "$b/consciousness/D01"
cp "$v/consciousness/D01/region.mmap" "$b/consciousness/D01/"
bad() { # DIM LAYOUT PYTHON: writes consciousness/DIM/region.mmap, with jessy_writer as w
    local dim=$1 layout=$2 code=$3
    mkdir -p "$b/consciousness/$dim"
    python3 - "$b/consciousness/$dim/region.mmap" "$writer" "${dim#D}" "$layout" <<EOF
import importlib.util, sys
spec = importlib.util.spec_from_file_location("w", sys.argv[2]); w = importlib.util.module_from_spec(spec); spec.loader.exec_module(w)
path, dim, layout = sys.argv[1], int(sys.argv[3]), sys.argv[4]
def layers(n, seed="bad"): return w.make_layers(dim, n, seed, text_safe=(layout == "text"))
def write(data): open(path, "wb").write(data)
def json_region(ls): return w.json_region(dim, "Bad", ls, 1690000000)
def text_region(ls): return w.text_region(dim, "Bad", 1 << 20, ls)
$code
EOF
}
bad D02 none 'write(b"\x89PNG neither layout " * 100)'
bad D03 json 'd = json_region(layers(500)); write(d + b"x")'                       # overflowed, one byte too many
bad D04 json 'write(json_region(layers(3))); w.rewrite_meta(path, lambda m: m["layers"][2].update(offset=99999))'
bad D05 json 'write(json_region(layers(3))); w.rewrite_meta(path, lambda m: m["layers"][2].update(size=99999))'
bad D06 json 'write(json_region(layers(3))); w.rewrite_meta(path, lambda m: m["layers"][2].update(offset=m["layers"][1]["offset"]))'
bad D07 json 'write(json_region(layers(3))); w.rewrite_meta(path, lambda m: m["layers"][2].update(layer_id=m["layers"][1]["layer_id"]))'
bad D08 text 'd = text_region(layers(4)); i = d.index("é".encode()); write(d[:i] + b"\xff" + d[i + 2:])'
bad D09 text 'ls = layers(2); ls[-1]["content"] = "abcé".encode(); write(text_region(ls)[:-2])'   # ends inside é
bad D10 text 'ls = layers(3); d = text_region(ls).decode(); write(d.replace("LAYER:1|", "LAYER:0|").encode())'  # duplicate LAYER
expect_fail "bad: info exits 1" "" "$layerfs" info "$b"
err=$("$layerfs" info "$b" 2>&1 >/dev/null)
check_error() { # NAME DIM PATTERN: info's error line for DIM names file and field
    if grep -qE -- "^layerfs: consciousness/$2/region.mmap: $3" <<<"$err"; then ok "$1"; else fail "$1" "$(grep "$2" <<<"$err" | head -2)"; fi
}
check_error "bad: no JSON marker and no text header (header)" D02 'header: there is no index.json beside it, and it is neither a v1 region .*nor a Jessy text region'
check_error "bad: overflowed metadata whose shifted layers do not fit (layers)" D03 'layers: the metadata overflows .* cannot be located'
check_error "bad: offset outside the file (layers[2].offset)" D04 'layer 2: layers\[2\]\.offset: byte 99999 is past the end'
check_error "bad: size outside the file (layers[2].size)" D05 'layer 2: layers\[2\]\.size: .* run past the end'
check_error "bad: overlapping layers (layers[2].offset)" D06 'layer 2: layers\[2\]\.offset: .* overlap layer 1'
check_error "bad: duplicate ids (layers[2].layer_id.layer)" D07 'layer 1: layers\[2\]\.layer_id\.layer: layer 1 appears twice'
check_error "bad: invalid UTF-8 in the text layout (content)" D08 'layer [0-9]+: layers\[[0-9]+\]\.content: invalid UTF-8'
check_error "bad: a character count ending inside a multi-byte character (SIZE)" D09 'layer 1: layers\[1\]\.SIZE: .* inside a multi-byte character'
check_error "bad: duplicate LAYER in the text layout" D10 'layer 0: layers\[1\]\.LAYER: layer 0 appears twice'
expect_eq "bad: the good dimension is ok in info" "ok (jessy-json, no checksums)" "$("$layerfs" info "$b" 2>/dev/null | awk '$1=="consciousness/D01"{print $(NF-3), $(NF-2), $(NF-1), $NF}')"
m=$(mnt_new 4)
expect "bad: the volume mounts" "$layerfs" mount "$b" "$m"
expect "bad: D01 serves its bytes" cmp "$m/D01/layer-001" "$expected/D01/layer-001"
for dim in D02 D03 D04 D05 D06 D07 D08 D09 D10; do
    e=$(getfattr --only-values -n user.error "$m/$dim" 2>/dev/null)
    if [[ $e == "consciousness/$dim/region.mmap: "* ]] && grep -qF "$(grep -F "consciousness/$dim/" <<<"$err" | head -1 | sed 's/^layerfs: //')" <<<"$e"; then
        ok "bad: $dim is an empty directory whose user.error names file and field"
    else
        fail "bad: $dim user.error" "$e"
    fi
done
expect_eq "bad: failed dimensions are empty" "" "$(ls -A "$m/D04" "$m/D09" | grep -v : | xargs)"
expect "bad: D01 still serves after the others failed" cmp "$m/D01/layer-001" "$expected/D01/layer-001"
expect "bad: unmount" "$layerfs" unmount "$m"
d5=$work/dest5
expect_fail "bad: import exits 1 and names the bad dimensions" "D04 not imported: consciousness/D04/region.mmap: layer 2: layers\[2\]\.offset" "$layerfs" import "$b" "$d5"
expect_eq "bad: import still imports the good dimension" "D01" "$(ls "$d5/consciousness" | xargs)"
expect_eq "bad: and its result verifies" "0" "$("$layerfs" verify -q "$d5" >/dev/null 2>&1; echo $?)"

# ---- a legacy region rewritten in place under the mount (what Jessy does)
l=$work/live
mkdir -p "$l/D01"
regen() { # SEED: Jessy rewrites D01 in place: same inode, truncated and written again
    python3 - "$l/D01/region.mmap" "$writer" "$1" <<'EOF'
import importlib.util, sys
spec = importlib.util.spec_from_file_location("w", sys.argv[2]); w = importlib.util.module_from_spec(spec); spec.loader.exec_module(w)
ls = w.make_layers(1, 40, sys.argv[3])
for x in ls: x["content"] = (x["content"] or b"-") * 400
open(sys.argv[1], "wb").write(w.json_region(1, "Emotion", ls, 1690000000))   # "wb": O_TRUNC, same inode
EOF
}
regen first
inode=$(stat -c %i "$l/D01/region.mmap")
expect_eq "a base with only Jessy's top-level DNN directories is a volume: verify exits 0" "0" "$("$layerfs" verify -q "$l" >/dev/null 2>&1; echo $?)"
expect_eq "... and info lists it" "D01 1 Emotion 40" "$("$layerfs" info "$l" 2>/dev/null | awk '$1=="D01"{print $1, $2, $3, $4}')"
m=$(mnt_new 5)
expect "live: mount" "$layerfs" mount --poll-interval 100 "$l" "$m"
cp "$m/D01/layer-010" "$work/old"
expect "live: the first content is served" grep -q 'first' "$m/D01/layer-010"
# A reader opens the old layer and reads a part before the rewrite, the rest after it.
exec 7<"$m/D01/layer-010"
head -c 100 <&7 > "$work/part1"
regen second
expect_eq "live: the rewrite kept the inode (an in-place modification)" "$inode" "$(stat -c %i "$l/D01/region.mmap")"
for _ in $(seq 100); do grep -q second "$m/D01/layer-010" 2>/dev/null && break; sleep 0.1; done
expect "live: the mount serves the new content once the file is consistent" grep -q 'second' "$m/D01/layer-010"
cat <&7 > "$work/part2" 2>"$work/readerr"
exec 7<&-
if cat "$work/part1" "$work/part2" | cmp -s - "$work/old"; then
    ok "live: the old reader got the old bytes, all of them"
elif grep -q "Input/output error" "$work/readerr"; then
    ok "live: the old reader got EIO"
else
    fail "live: the old reader got a mix" "$(cat "$work/part1" "$work/part2" | head -c 300)"
fi
expect_eq "live: the new content is the writer's" "ok" "$(python3 - "$m/D01/layer-010" "$writer" <<'EOF'
import importlib.util, sys
spec = importlib.util.spec_from_file_location("w", sys.argv[2]); w = importlib.util.module_from_spec(spec); spec.loader.exec_module(w)
want = (w.make_layers(1, 40, "second")[9]["content"] or b"-") * 400
print("ok" if open(sys.argv[1], "rb").read() == want else "differs")
EOF
)"
# Half-written: Jessy truncated the file and wrote only part of it. Not one consistent file:
# the mount keeps serving the last one and says why in user.error.
python3 - "$l/D01/region.mmap" <<'EOF'
import sys
p = sys.argv[1]
d = open(p, "rb").read()
open(p, "wb").write(d[: len(d) // 2])
EOF
for _ in $(seq 100); do getfattr -n user.error "$m/D01" >/dev/null 2>&1 && break; sleep 0.1; done
expect "live: a half-written file is not served; user.error says why, naming the file" \
    bash -c 'getfattr --only-values -n user.error "$1/D01" | grep -q "newest files not served: D01/region.mmap: "' _ "$m"
expect "live: meanwhile the previous content is still served" grep -q 'second' "$m/D01/layer-010"
regen third
for _ in $(seq 100); do grep -q third "$m/D01/layer-010" 2>/dev/null && break; sleep 0.1; done
expect "live: the completed rewrite is served" grep -q 'third' "$m/D01/layer-010"
expect "live: and user.error is gone" bash -c '! getfattr -n user.error "$1/D01" 2>/dev/null' _ "$m"
expect_eq "live: user.generation is the new file's" "sha256:$(sha256sum < "$l/D01/region.mmap" | cut -d' ' -f1)" \
    "$(getfattr --only-values -n user.generation "$m/D01")"
expect "live: unmount" "$layerfs" unmount "$m"

finish
