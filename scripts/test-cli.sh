#!/usr/bin/env bash
# The offline commands driven as a user would: init, pack, verify, info, exit codes, messages.
# Usage: scripts/test-cli.sh LAYERFS
set -uo pipefail
layerfs=$(realpath "$1")
here=$(cd "$(dirname "$0")/.." && pwd)
source "$here/Tests/shell/lib.sh"
work=$(mktemp -d /tmp/layerfs-cli-XXXXXX)
test_user=layerfs-test-cli
made_user=""
cleanup() {
    # The mounts made on purpose below, and any a regression made: never leave one behind.
    local m
    for m in $(awk -v w="$work/" 'index($2, w) == 1 { print $2 }' /proc/mounts); do umount -l "$m"; done
    [ -n "$made_user" ] && userdel "$test_user" 2>/dev/null
    rm -rf "$work" "${shm:-}"
}
trap cleanup EXIT
v=$work/vol

expect "--version" "$layerfs" --version
for sub in init pack verify info; do expect "$sub --help" "$layerfs" $sub --help; done
expect "init --sample" "$layerfs" init --sample "$v"
expect "init is idempotent" "$layerfs" init --sample "$v"
expect_eq "init made D01..D14" "14" "$(ls "$v/consciousness" | wc -l)"
expect "verify sample" "$layerfs" verify "$v"
expect "verify one dimension" "$layerfs" verify "$v/consciousness/D03"
expect "info sample" "$layerfs" info "$v"
expect_eq "info totals 42 layers" "42" "$("$layerfs" info "$v" | awk '$1=="TOTAL"{print $2}')"
expect_eq "MMAP_BASE_PATH is the default base" "0" "$(cd "$work" && MMAP_BASE_PATH=$v "$layerfs" verify -q >/dev/null; echo $?)"
expect_eq "sample is deterministic" \
    "$(cat "$v/consciousness/D05/region.mmap" | sha256sum)" \
    "$("$layerfs" init --sample "$work/vol2" >/dev/null; cat "$work/vol2/consciousness/D05/region.mmap" | sha256sum)"

# pack: same input and time give identical bytes; xattrs and mtimes are read.
in=$work/in; mkdir -p "$in"
printf 'hello\n' > "$in/layer-001"; printf 'world\n' > "$in/layer-002"
setfattr -n user.frequency -v 2.5 "$in/layer-001"
setfattr -n user.keywords -v 'a\,b,c' "$in/layer-001"
touch -d 2024-01-02T03:04:05Z "$in/layer-001" "$in/layer-002"
expect "pack" "$layerfs" pack --dimension 15 --time 2024-05-05T00:00:00Z "$in" "$v/consciousness/D15"
cp "$v/consciousness/D15/region.mmap" "$work/r1"; cp "$v/consciousness/D15/index.json" "$work/i1"
expect "repack" "$layerfs" pack --dimension 15 --time 2024-05-05T00:00:00Z "$in" "$v/consciousness/D15"
expect "repack region identical" cmp "$work/r1" "$v/consciousness/D15/region.mmap"
expect "repack index identical" cmp "$work/i1" "$v/consciousness/D15/index.json"
expect_eq "SOURCE_DATE_EPOCH sets the time" '"updated_at": "1970-01-01T00:16:40Z",' \
    "$(SOURCE_DATE_EPOCH=1000 "$layerfs" pack --proto "$in" "$v/proto/draft" >/dev/null; grep -m1 '"updated_at"' "$v/proto/draft/index.json" | tr -d ' ' | sed 's/"updated_at":/"updated_at": /')"
expect "keywords from xattr" grep -q '"keywords": \["a,b", "c"\]' "$v/consciousness/D15/index.json"
expect "frequency from xattr" grep -q '"frequency": 2.5' "$v/consciousness/D15/index.json"
expect "updated_at from mtime" grep -q '"updated_at": "2024-01-02T03:04:05Z"' "$v/consciousness/D15/index.json"
expect "verify after packs" "$layerfs" verify "$v"

# Spec rule 7: keywords joined as user.keywords are at most 65 536 bytes.
set_keywords() { # INDEX KEYWORD: layer 1's keywords become [KEYWORD]
    python3 -c 'import json, sys; p = sys.argv[1]; i = json.load(open(p)); i["layers"][0]["keywords"] = [sys.argv[2]]; json.dump(i, open(p, "w"))' "$1" "$2"
}
set_keywords "$v/consciousness/D15/index.json" "$(printf 'a%.0s' {1..65534})\\"
expect "verify accepts keywords of 65536 bytes" "$layerfs" verify "$v/consciousness/D15"
set_keywords "$v/consciousness/D15/index.json" "$(printf 'a%.0s' {1..65535})\\"
expect_fail "verify refuses keywords of 65537 bytes" \
    "consciousness/D15/index.json: layer 1: layers\[0\]\.keywords: joined as user.keywords they are 65537 bytes" "$layerfs" verify "$v"
cp "$work/i1" "$v/consciousness/D15/index.json"
# pack reads keywords from a 64 KiB attribute: only tmpfs-like filesystems store one.
shm=$(mktemp -d /dev/shm/layerfs-cli-XXXXXX 2>/dev/null) || shm=""
if [ -n "$shm" ] && printf 'x\n' > "$shm/layer-001" \
    && setfattr -n user.keywords -v "$(printf 'a%.0s' {1..65536})" "$shm/layer-001" 2>/dev/null; then
    expect "pack accepts a 65536-byte user.keywords" "$layerfs" pack --dimension 16 "$shm" "$v/consciousness/D16"
    # A trailing lone backslash is kept as a literal one, escaped on the way out: 65537 bytes.
    setfattr -n user.keywords -v "$(printf 'a%.0s' {1..65535})\\" "$shm/layer-001"
    expect_fail "pack refuses keywords that join to 65537 bytes" "$shm/layer-001: user\.keywords: joined as user.keywords they are 65537 bytes" \
        "$layerfs" pack --dimension 16 "$shm" "$v/consciousness/D16"
    expect "refused pack left D16 as it was" "$layerfs" verify "$v/consciousness/D16"
    rm -rf "$shm" "$v/consciousness/D16"
else
    [ -n "$shm" ] && rm -rf "$shm"
    skip "pack and 64 KiB user.keywords" "no filesystem here stores a 64 KiB attribute value"
fi
expect_fail "pack needs exactly one kind" "exactly one" "$layerfs" pack "$in" "$v/consciousness/D16"
expect_fail "pack refuses a mismatched directory name" "dimension 15" "$layerfs" pack --dimension 16 "$in" "$v/consciousness/D15"
expect_fail "pack refuses over MMAP_MAX_SIZE" "over the maximum" env MMAP_MAX_SIZE=4096 "$layerfs" pack --dimension 16 "$in" "$v/consciousness/D16"
setfattr -n user.checksum -v "sha256:$(printf '0%.0s' {1..64})" "$in/layer-002"
expect_fail "pack refuses a wrong user.checksum" "layer-002.*user.checksum" "$layerfs" pack --dimension 16 "$in" "$v/consciousness/D16"
expect_fail "pack refuses a bad --time" "RFC 3339" "$layerfs" pack --dimension 16 --time yesterday "$in" "$v/consciousness/D16"
expect_fail "pack refuses a --time that does not exist" "RFC 3339" "$layerfs" pack --dimension 16 --time 2023-02-29T00:00:00Z "$in" "$v/consciousness/D16"

# verify: problems are named, exit non-zero; other dimensions unaffected.
printf 'XXXX' | dd of="$v/consciousness/D02/region.mmap" bs=1 seek=4096 conv=notrunc 2>/dev/null
expect_fail "verify finds a flipped layer" "consciousness/D02/index.json: layer 1: checksum: " "$layerfs" verify "$v"
expect_fail "verify counts problems" "2 problems" "$layerfs" verify "$v"
expect "other dimension still verifies" "$layerfs" verify "$v/consciousness/D03"
mkdir "$v/consciousness/.D03.pack-dead"
expect_fail "verify reports a leftover pack directory" "consciousness/.D03.pack-dead: leftover" "$layerfs" verify "$v"
rm -f "$v/consciousness/D04/index.json"
expect_fail "verify names a missing index" "consciousness/D04/index.json: file is missing" "$layerfs" verify "$v"
expect_fail "verify of a non-volume" "^layerfs: '.*/in' is not a volume .*nor a dimension directory" "$layerfs" verify "$work/in"
expect_fail "info of a non-volume" "^layerfs: '.*/in' is not a volume .*\`layerfs init '.*/in'\`" "$layerfs" info "$work/in"

# A second sample volume, unbroken, with an empty dimension D20 beside the sample ones.
"$layerfs" init --sample "$work/jvol" >/dev/null
mkdir "$work/jvol/consciousness/D20"

# info: still the whole table, the broken dimension marked, its error after `layerfs: `, exit 1.
expect_fail "info exits 1 on a broken dimension" "consciousness/D04 +4 +Social +- .* FAILED" "$layerfs" info "$v"
expect_fail "info: the error follows layerfs:" "^layerfs: consciousness/D04/index.json: file is missing" "$layerfs" info "$v"
expect_fail "info: the TOTAL line counts the failure" "^TOTAL .* 1 FAILED$" "$layerfs" info "$v"
expect_eq "info: stdout is the table alone, errors on stderr" "0:18" \
    "$("$layerfs" info "$v" 2>/dev/null | grep -c -e '^layerfs:' -e '^error:'):$("$layerfs" info "$v" 2>/dev/null | wc -l)"
expect_eq "info: the other dimensions are ok" "15" "$("$layerfs" info "$v" 2>/dev/null | grep -c ' ok$')"

# info --json: one JSON object that python reads, with the same figures as the files.
expect "info --json is JSON (python3 -m json.tool)" bash -c '"$1" info --json "$2" | python3 -m json.tool >/dev/null' _ "$layerfs" "$work/jvol"
json_check() { # VOLUME PYTHON: PYTHON sees the parsed object as j; prints what it checks
    "$layerfs" info --json "$1" 2>/dev/null | python3 -c '
import json, os, sys
j = json.load(sys.stdin)
base = sys.argv[1]
'"$2" "$1"
}
expect_eq "info --json: volume, status, keys of a dimension" \
    "$work/jvol ok ['content_bytes', 'error', 'id', 'kind', 'layers', 'name', 'padding_bytes', 'padding_percent', 'path', 'region_bytes', 'status', 'updated_at']" \
    "$(json_check "$work/jvol" 'print(j["volume"], j["status"], sorted(j["dimensions"][0]))')"
expect_eq "info --json: D05's figures match its files" "ok" "$(json_check "$work/jvol" '
d = [x for x in j["dimensions"] if x["path"] == "consciousness/D05"][0]
idx = json.load(open(os.path.join(base, d["path"], "index.json")))
size = os.path.getsize(os.path.join(base, d["path"], "region.mmap"))
content = sum(l["size"] for l in idx["layers"])
assert (d["id"], d["name"], d["kind"], d["layers"]) == (5, "Temporal", "consciousness", len(idx["layers"])), d
assert (d["region_bytes"], d["content_bytes"], d["padding_bytes"]) == (size, content, size - content), d
assert d["padding_percent"] == round((size - content) * 100 / size, 1), d
assert (d["updated_at"], d["status"], d["error"]) == (idx["updated_at"], "ok", None), d
print("ok")')"
expect_eq "info --json: an empty dimension" "20 empty 0 0 None None" \
    "$(json_check "$work/jvol" 'd = j["dimensions"][-1]; print(d["id"], d["status"], d["layers"], d["region_bytes"], d["updated_at"], d["padding_percent"])')"
expect_eq "info --json: totals" "15 14 1 0 42 True" \
    "$(json_check "$work/jvol" 't = j["totals"]; print(t["dimensions"], t["ok"], t["empty"], t["failed"], t["layers"], t["region_bytes"] == sum(d["region_bytes"] for d in j["dimensions"]))')"
expect_eq "info --json agrees with the table's TOTAL line" \
    "$("$layerfs" info "$work/jvol" | awk '$1=="TOTAL"{print $2, $3, $4}')" \
    "$(json_check "$work/jvol" 't = j["totals"]; print(t["layers"], t["region_bytes"], t["content_bytes"])')"
expect_eq "info --json on a broken volume: exit 1, still one JSON object, the failure named" \
    "1 failed consciousness/D04 failed None consciousness/D04/index.json: file is missing (region.mmap is present)" \
    "$("$layerfs" info --json "$v" >"$work/broken.json" 2>/dev/null; rc=$?; python3 -c '
import json, sys
j = json.load(open(sys.argv[1]))
d = [x for x in j["dimensions"] if x["status"] == "failed"]
print(sys.argv[2], j["status"], d[0]["path"], d[0]["status"], d[0]["layers"], d[0]["error"])' "$work/broken.json" "$rc")"
expect_eq "info --json of one dimension" "None 1 consciousness/D03" \
    "$(cd "$work/jvol" && "$layerfs" info --json consciousness/D03 | python3 -c 'import json, sys; j = json.load(sys.stdin); print(j["volume"], len(j["dimensions"]), j["dimensions"][0]["path"])')"

# info of one dimension directory describes that dimension.
expect_eq "info DIMENSION_DIR: one row and the total" "$work/jvol/consciousness/D03 Intention 3|TOTAL 3" \
    "$("$layerfs" info "$work/jvol/consciousness/D03" | awk 'NR==2{r=$1" "$3" "$4} $1=="TOTAL"{t=$1" "$2} END{print r"|"t}')"
expect_fail "info of consciousness/ says to give the volume" \
    "^layerfs: '.*/jvol/consciousness' is the consciousness/ directory of the volume '.*/jvol': info '.*/jvol' instead" \
    "$layerfs" info "$work/jvol/consciousness"

# verify --print-sums: a `sha256sum -c` file, checked against a copy of the layers that python
# cuts out of region.mmap at the index's offsets, and (below) against a mount and an rsync copy.
extract_layers() { # DIMENSION_DIR OUT_DIR: each layer's bytes as OUT_DIR/layer-NNN
    python3 -c '
import json, os, sys
d, out = sys.argv[1], sys.argv[2]
idx = json.load(open(os.path.join(d, "index.json")))
region = open(os.path.join(d, "region.mmap"), "rb").read()
os.makedirs(out, exist_ok=True)
for l in idx["layers"]:
    open(os.path.join(out, "layer-%03d" % l["layer_id"]), "wb").write(region[l["offset"]:l["offset"] + l["size"]])' "$1" "$2"
}
"$layerfs" verify --print-sums "$work/jvol/consciousness/D05" > "$work/D05.sums"
expect_eq "print-sums: one line per layer, HEX two spaces layer-NNN" "3:3" \
    "$(wc -l < "$work/D05.sums"):$(grep -cE '^[0-9a-f]{64}  layer-[0-9]{3}$' "$work/D05.sums")"
extract_layers "$work/jvol/consciousness/D05" "$work/D05.copy"
expect "print-sums: sha256sum -c passes on the layers' bytes" bash -c 'cd "$1" && sha256sum --quiet -c "$2"' _ "$work/D05.copy" "$work/D05.sums"
printf 'X' | dd of="$work/D05.copy/layer-002" bs=1 seek=3 conv=notrunc 2>/dev/null
expect_fail "print-sums: sha256sum -c catches a changed layer" "layer-002: FAILED" \
    bash -c 'cd "$1" && sha256sum -c "$2"' _ "$work/D05.copy" "$work/D05.sums"
expect_eq "print-sums: the dimension defaults to the current directory" "$(cat "$work/D05.sums")" \
    "$(cd "$work/jvol/consciousness/D05" && "$layerfs" verify --print-sums)"
expect_eq "print-sums of a proto dimension" "layer-001 layer-002" \
    "$("$layerfs" verify --print-sums "$v/proto/draft" | awk '{printf "%s%s", s, $2; s=" "}')"
expect_eq "print-sums of an empty dimension prints nothing" "0:" \
    "$(out=$("$layerfs" verify --print-sums "$work/jvol/consciousness/D20"); echo "$?:$out")"
expect_fail "print-sums refuses a volume" "^layerfs: --print-sums needs one dimension directory, not the volume '.*/jvol'" \
    "$layerfs" verify --print-sums "$work/jvol"
expect_fail "print-sums refuses a broken dimension" "^layerfs: .*D04/index.json: file is missing" \
    "$layerfs" verify --print-sums "$v/consciousness/D04"

# Paths are described as what they are.
expect_fail "verify of a missing path: does not exist" "^layerfs: 'nosuch' does not exist$" bash -c 'cd "$1" && "$2" verify nosuch' _ "$work" "$layerfs"
expect_fail "info of a missing path: does not exist" "^layerfs: '.*/nothing' does not exist$" "$layerfs" info "$work/nothing"
expect_fail "verify of a regular file" "^layerfs: '.*/README.md' is a regular file, not a volume or a dimension directory" \
    "$layerfs" verify "$work/jvol/README.md"
expect_fail "the default volume, missing, says where it came from" "^layerfs: 'data/mmap' does not exist \(the default volume: give one, or set \\\$MMAP_BASE_PATH\)" \
    bash -c 'cd "$1" && env -u MMAP_BASE_PATH "$2" verify' _ "$work" "$layerfs"
expect "verify . inside a volume" bash -c 'cd "$1" && "$2" verify .' _ "$work/jvol" "$layerfs"
expect "verify . inside a dimension" bash -c 'cd "$1" && "$2" verify .' _ "$work/jvol/consciousness/D05" "$layerfs"
ln -s "$work/jvol/consciousness/D05" "$work/D05-link" && ln -s "$work/jvol/consciousness/D05" "$work/D07"
expect "verify of a symlink to a dimension, by the target's name" "$layerfs" verify "$work/D05-link"
expect_fail "verify of a symlink D07 to D05: the name given decides, the header disagrees" "header.dimension_id: is 5 but the directory .*/D07 means 7" \
    "$layerfs" verify "$work/D07"
expect "info . inside a dimension" bash -c 'cd "$1" && "$2" info .' _ "$work/jvol/consciousness/D05" "$layerfs"

# The README that init writes: each command it lists works when run as written, in the volume.
"$layerfs" init "$work/rvol" >/dev/null
mkdir -p "$work/rin" && printf 'one\n' > "$work/rin/a.txt" && printf 'two\n' > "$work/rin/b.txt"
mkdir -p "$work/bin" && ln -sf "$layerfs" "$work/bin/layerfs"
readme_commands=$(grep '^- ' "$work/rvol/README.md" | grep -o '`layerfs [^`]*`' | tr -d '`')
expect_eq "README lists pack, verify, info, mount" "pack verify info mount" "$(awk '{printf "%s%s", s, $2; s=" "}' <<<"$readme_commands")"
while read -r cmd; do
    case $cmd in
    "layerfs mount"*) continue ;;   # run below, where a mount is allowed
    esac
    expect "README, run inside the volume: $cmd" bash -c 'cd "$1" && PATH="$2:$PATH" eval "${3//DIR/$4}"' _ "$work/rvol" "$work/bin" "$cmd" "$work/rin"
done <<<"$readme_commands"
expect_eq "README's pack filled D05" "2" "$("$layerfs" info "$work/rvol" | awk '$1=="consciousness/D05"{print $4}')"
expect_fail "init's README no longer says a bare \`layerfs verify\`" "" grep -q '`layerfs verify`' "$work/rvol/README.md"

# A mistyped subcommand is not taken for a mount SOURCE (`mount` is the default subcommand).
typo() { # NAME WORD MEANT
    expect_eq "typo $2: did you mean '$3'? (exit 64)" "64:layerfs: unknown subcommand '$2'; did you mean '$3'?" \
        "$(cd "$work" && out=$("$layerfs" "$2" mnt 2>&1); echo "$?:$out")"
}
typo alias umount unmount
typo alias fsck verify
typo distance veirfy verify
typo distance inf info
typo distance mout mount
typo distance pakc pack
expect_eq "a far-off word is still a mount SOURCE" "1:0" \
    "$(cd "$work" && out=$("$layerfs" frobnicate "$work/mnt" 2>&1); echo "$?:$(grep -c 'unknown subcommand' <<<"$out")")"
mkdir -p "$work/cwd/umount"
expect_eq "an existing path named like a typo is a SOURCE" "1:no guess" \
    "$(cd "$work/cwd" && out=$("$layerfs" umount "$work/mnt" 2>&1); echo "$?:$(grep -q 'unknown subcommand' <<<"$out" && echo guessed || echo 'no guess')")"
expect_eq "bare layerfs without the default volume: the usage, the reason, exit 64" "64:1:1" \
    "$(cd "$work" && out=$(env -u MMAP_BASE_PATH "$layerfs" 2>&1); echo "$?:$(grep -c '^USAGE: layerfs <subcommand>' <<<"$out"):$(grep -c "^layerfs: no volume at 'data/mmap' (the default) to mount" <<<"$out")")"
expect_fail "bare layerfs names \$MMAP_BASE_PATH when it set the volume" "^layerfs: no volume at '/nonexistent' \(from \\\$MMAP_BASE_PATH\)" \
    env MMAP_BASE_PATH=/nonexistent "$layerfs"

# --help: examples, and paragraphs that ArgumentParser wraps itself. A line break written in
# the source shows as a break in mid-sentence: at 400 columns, every line of the text above
# USAGE is then a whole paragraph (followed by a blank line) or an example (indented).
for cmd in "" init verify info; do
    help=$(COLUMNS=400 "$layerfs" $cmd --help)
    expect_eq "help ${cmd:-(root)}: has examples" "1" "$(grep -c '^Examples:$' <<<"$help")"
    expect_eq "help ${cmd:-(root)}: no mid-sentence line breaks" "" \
        "$(awk '/^USAGE:/{exit} prev != "" && $0 != "" && prev !~ /^(  |Examples:)/ {print "after: " prev} {prev=$0}' <<<"$help")"
done
expect_eq "root help has no -o <o> placeholder" "0" "$("$layerfs" --help | grep -c -- '-o <o>')"

# Permission denied, as a user who may not read the volume (root may read anything).
if [ "$(id -u)" -eq 0 ] && command -v useradd >/dev/null && command -v setpriv >/dev/null; then
    if ! id "$test_user" >/dev/null 2>&1; then useradd -M -s /usr/sbin/nologin "$test_user" && made_user=1; fi
    as_user() { setpriv --reuid="$(id -u "$test_user")" --regid="$(id -g "$test_user")" --clear-groups "$@"; }
    chmod 711 "$work"
    mkdir -p "$work/perm/hidden"
    "$layerfs" init --sample "$work/perm/locked" >/dev/null
    "$layerfs" init --sample "$work/perm/hidden/vol" >/dev/null
    chmod 755 "$work/perm"; chmod 700 "$work/perm/locked" "$work/perm/hidden"
    expect_fail "verify of an unreadable volume: permission denied" "^layerfs: '.*/perm/locked': permission denied$" as_user "$layerfs" verify "$work/perm/locked"
    expect_fail "info of an unreadable volume: permission denied, no init advice" "^layerfs: '.*/perm/locked': permission denied$" as_user "$layerfs" info "$work/perm/locked"
    expect_fail "info of a volume behind an unreadable directory: permission denied" "^layerfs: '.*/perm/hidden/vol': permission denied$" \
        as_user "$layerfs" info "$work/perm/hidden/vol"
    expect_fail "verify of a dimension behind an unreadable directory: permission denied" "^layerfs: '.*/hidden/vol/consciousness/D01': permission denied$" \
        as_user "$layerfs" verify "$work/perm/hidden/vol/consciousness/D01"
    chmod 755 "$work/perm/locked"; chmod 600 "$work/perm/locked/consciousness/D02/index.json"
    expect_fail "info as a user: an unreadable index fails its dimension" "^layerfs: consciousness/D02/index.json: cannot open: Permission denied" \
        as_user "$layerfs" info "$work/perm/locked"
    chmod 755 "$work/perm/locked/consciousness"
    chmod 700 "$work"
else
    skip "permission denied as an unprivileged user" "needs root, useradd and setpriv"
fi

# Against a mount: verify and info point at the mount's source; --print-sums checks the
# mount's layers and an rsync copy of them with sha256sum alone. Skipped without /dev/fuse.
if [ -c /dev/fuse ] && [ "$(id -u)" -eq 0 ]; then
    mkdir -p "$work/smnt"
    src=$(realpath "$work/jvol")
    if "$layerfs" mount "$work/jvol" "$work/smnt"; then
        expect_fail "verify MOUNTPOINT: verify the source instead" \
            "^layerfs: '$work/smnt' is a layerfs mount of '$src': verify '$src' instead$" "$layerfs" verify "$work/smnt"
        expect_fail "info MOUNTPOINT: info the source instead" "^layerfs: 'smnt' is a layerfs mount of '$src': info '$src' instead$" \
            bash -c 'cd "$1" && "$2" info smnt' _ "$work" "$layerfs"
        expect_fail "verify MOUNTPOINT/D05: verify the source's dimension instead" \
            "^layerfs: '$work/smnt/D05' is inside the layerfs mount '$work/smnt' of '$src': verify '$src/consciousness/D05' instead$" \
            "$layerfs" verify "$work/smnt/D05"
        expect "print-sums: sha256sum -c in MOUNT/D05" bash -c 'cd "$1" && sha256sum --quiet -c "$2"' _ "$work/smnt/D05" "$work/D05.sums"
        rsync -a "$work/smnt/D05/" "$work/D05.rsync/"
        expect "print-sums: sha256sum -c in an rsync copy of MOUNT/D05" bash -c 'cd "$1" && sha256sum --quiet -c "$2"' _ "$work/D05.rsync" "$work/D05.sums"
        expect "unmount" "$layerfs" unmount "$work/smnt"
    else
        fail "mount for the mount checks" "layerfs mount failed"
    fi
    # The README's mount line, run inside the volume as written (its mountpoint made ours).
    mount_cmd=$(grep '^layerfs mount' <<<"$readme_commands")
    mkdir -p "$work/rmnt"
    expect "README, run inside the volume: $mount_cmd" bash -c 'cd "$1" && PATH="$2:$PATH" eval "${3//\/mnt\/layers/$4}"' _ "$work/rvol" "$work/bin" "$mount_cmd" "$work/rmnt"
    expect_eq "README's mount shows the packed D05" "layer-001 layer-002" "$(ls "$work/rmnt/D05" | tr '\n' ' ' | sed 's/ $//')"
    "$layerfs" unmount "$work/rmnt"
else
    skip "verify/info of a mount, print-sums against a mount, README's mount" "needs /dev/fuse and root"
fi

# make install/uninstall. A real `make install` builds in release and runs the generate-manual
# plugin (minutes on a fresh tree): too slow here. Checked: the completion scripts the binary
# writes, what `make -n install` would install where, and that uninstall removes exactly that.
expect "bash completion script parses" bash -c '"$1" --generate-completion-script bash | bash -n' _ "$layerfs"
expect_eq "bash completion completes subcommands" "verify" "$(bash -c 'source <("$1" --generate-completion-script bash)
    COMP_WORDS=(layerfs veri); COMP_CWORD=1; COMP_LINE="layerfs veri"; COMP_POINT=${#COMP_LINE}
    _layerfs layerfs veri layerfs; echo "${COMPREPLY[@]}"' _ "$layerfs" 2>&1)"
expect "zsh completion script is written" bash -c '"$1" --generate-completion-script zsh | grep -q "^#compdef layerfs"' _ "$layerfs"
prefix=$work/prefix
installed="$prefix/bin/layerfs $prefix/share/bash-completion/completions/layerfs $prefix/share/man/man1/layerfs.1 $prefix/share/zsh/site-functions/_layerfs"
expect_eq "make install would install the binary, the man page and both completions" "$installed" \
    "$(make -s -n -C "$here" install PREFIX="$prefix" | grep -o "$prefix/[^ ]*" | sort | tr '\n' ' ' | sed 's/ $//')"
for f in $installed "$prefix/share/man/man1/other.1"; do install -D /dev/null "$f"; done
make -s -C "$here" uninstall PREFIX="$prefix" >/dev/null
expect_eq "make uninstall removes what install put there, nothing else" "$prefix/share/man/man1/other.1" "$(find "$prefix" -type f)"

# Mount options: every number is range-checked before anything is mounted (so no /dev/fuse
# is needed here); the message names the option as it was spelled and the allowed range.
# "Nothing mounted" counts the layerfs mounts under $work: other suites may mount and unmount
# elsewhere on the machine meanwhile.
ours_mounted() { grep -c " $work/[^ ]* fuse.layerfs " /proc/mounts; }
mkdir -p "$work/mnt"
"$layerfs" init "$work/mvol" >/dev/null
refuse_mount() { # NAME PATTERN ARGS...: refused with PATTERN, nothing mounted
    local name=$1 pattern=$2; shift 2
    expect_fail "mount refuses $name" "^layerfs: $pattern" "$layerfs" mount "$@" "$work/mvol" "$work/mnt"
}
ms="0 to 3600000 milliseconds"; th="1 to 1024 threads"; ra="0 to 1048576 KiB"; rs="4096 to 4611686018427387904 bytes"
refuse_mount "-o poll_interval=99999999999" "-o poll_interval=99999999999: out of range \($ms\)" -o poll_interval=99999999999
refuse_mount "-o poll_interval=3600001" "-o poll_interval=3600001: out of range \($ms\)" -o poll_interval=3600001
refuse_mount "-o poll_interval=-1" "-o poll_interval=-1: out of range \($ms\)" -o poll_interval=-1
refuse_mount "--poll-interval -1" "--poll-interval -1: out of range \($ms\)" --poll-interval -1
refuse_mount "--poll-interval=99999999999999999999" "--poll-interval 99999999999999999999: out of range \($ms\)" --poll-interval=99999999999999999999
refuse_mount "-o poll_interval=abc" "-o poll_interval=abc: not a whole number \($ms\)" -o ro,poll_interval=abc
refuse_mount "-o poll_interval without a value" "-o poll_interval: needs a value \(poll_interval=N, $ms\)" -o poll_interval
refuse_mount "-o max_threads=0" "-o max_threads=0: out of range \($th\)" -o max_threads=0
refuse_mount "-o max_threads=1025" "-o max_threads=1025: out of range \($th\)" -o max_threads=1025
refuse_mount "-o max_threads=2^64" "-o max_threads=18446744073709551616: out of range \($th\)" -o max_threads=18446744073709551616
refuse_mount "-o max_threads=-1" "-o max_threads=-1: out of range \($th\)" -o max_threads=-1
refuse_mount "-o readahead_kb=-5" "-o readahead_kb=-5: out of range \($ra\)" -o readahead_kb=-5
refuse_mount "-o readahead_kb=1048577" "-o readahead_kb=1048577: out of range \($ra\)" -o readahead_kb=1048577
refuse_mount "--readahead-kb -1" "--readahead-kb -1: out of range \($ra\)" --readahead-kb -1
refuse_mount "--readahead-kb 99999999999999999999" "--readahead-kb 99999999999999999999: out of range \($ra\)" --readahead-kb 99999999999999999999
refuse_mount "-o max_region_size=4095" "-o max_region_size=4095: out of range \($rs\)" -o max_region_size=4095
refuse_mount "-o max_region_size=2^62+1" "-o max_region_size=4611686018427387905: out of range \($rs\)" -o max_region_size=4611686018427387905
refuse_mount "--max-region-size -1" "--max-region-size -1: out of range \($rs\)" --max-region-size -1
refuse_mount "--max-region-size 0" "--max-region-size 0: out of range \($rs\)" --max-region-size 0
expect_fail "MMAP_MAX_SIZE out of range names the variable" "^layerfs: MMAP_MAX_SIZE=100: out of range \($rs\)" \
    env MMAP_MAX_SIZE=100 "$layerfs" mount "$work/mvol" "$work/mnt"
expect_fail "MMAP_MAX_SIZE that is not a size (10MB is ambiguous)" "^layerfs: MMAP_MAX_SIZE=10MB: not a size" \
    env MMAP_MAX_SIZE=10MB "$layerfs" mount "$work/mvol" "$work/mnt"
expect_fail "sizes take binary suffixes: -o max_region_size=1G passes the check" "^layerfs: mountpoint .* does not exist" \
    "$layerfs" mount "$work/mvol" "$work/none" -o max_region_size=1G
expect_fail "sizes take binary suffixes: --max-region-size 64K passes the check" "^layerfs: mountpoint .* does not exist" \
    "$layerfs" mount --max-region-size 64K "$work/mvol" "$work/none"
refuse_mount "-o =" "unknown mount option -o =" -o =
# The bounds themselves pass the checks: the mount then fails on its missing mountpoint.
expect_fail "mount accepts the upper bounds" "^layerfs: mountpoint .* does not exist" "$layerfs" mount \
    -o poll_interval=3600000,max_threads=1024,readahead_kb=1048576,max_region_size=4611686018427387904 "$work/mvol" "$work/none"
expect_fail "mount accepts the lower bounds" "^layerfs: mountpoint .* does not exist" \
    env MMAP_MAX_SIZE=4096 "$layerfs" mount --poll-interval 0 --readahead-kb 0 -o max_threads=1 "$work/mvol" "$work/none"
expect_eq "nothing got mounted" "0" "$(ours_mounted)"
expect_eq "make unmount with nothing mounted: silent success" "0:" \
    "$(out=$(make -s -C "$here" unmount MNT="$work/mnt" RELEASE="$layerfs" 2>&1); echo "$?:$out")"
# The same variable and option for pack and verify, and SOURCE_DATE_EPOCH for pack.
expect_fail "verify: MMAP_MAX_SIZE out of range" "^layerfs: MMAP_MAX_SIZE=1: out of range \($rs\)" env MMAP_MAX_SIZE=1 "$layerfs" verify "$work/mvol"
expect_fail "verify: --max-region-size -1" "^layerfs: --max-region-size -1: out of range \($rs\)" "$layerfs" verify --max-region-size -1 "$work/mvol"
expect_fail "pack: --max-region-size 4095" "^layerfs: --max-region-size 4095: out of range \($rs\)" "$layerfs" pack --max-region-size 4095 --dimension 3 "$in" "$work/mvol/consciousness/D03"
expect_fail "pack: SOURCE_DATE_EPOCH past 9999" "^layerfs: SOURCE_DATE_EPOCH=253402300800: out of range \(0 to 253402300799 seconds" \
    env SOURCE_DATE_EPOCH=253402300800 "$layerfs" pack --dimension 3 "$in" "$work/mvol/consciousness/D03"

# Suites that need /dev/fuse skip without it, except under CI, where skipping would pass a run
# that tested no mount. LAYERFS_FUSE_DEVICE stands in for a machine without the device.
for suite in test-mount test-live; do
    expect_fail "$suite.sh fails under CI=true without a FUSE device" "FAILED: /nonexistent is absent, so .* cannot run, and CI=true" \
        env LAYERFS_FUSE_DEVICE=/nonexistent CI=true "$here/scripts/$suite.sh" "$layerfs"
    expect_fail "$suite.sh fails under CI=1 without a FUSE device" "FAILED: /nonexistent is absent" \
        env LAYERFS_FUSE_DEVICE=/nonexistent CI=1 "$here/scripts/$suite.sh" "$layerfs"
    expect_eq "$suite.sh skips without CI and without a FUSE device" "0:SKIPPED" \
        "$(out=$(env -u CI LAYERFS_FUSE_DEVICE=/nonexistent "$here/scripts/$suite.sh" "$layerfs" 2>&1); echo "$?:$(grep -o '^SKIPPED' <<<"$out")")"
    expect_eq "$suite.sh skips under CI=false without a FUSE device" "0:SKIPPED" \
        "$(out=$(env CI=false LAYERFS_FUSE_DEVICE=/nonexistent "$here/scripts/$suite.sh" "$layerfs" 2>&1); echo "$?:$(grep -o '^SKIPPED' <<<"$out")")"
done
expect_eq "require_fuse lets a suite run where the device exists, also under CI" "runs" \
    "$(LAYERFS_FUSE_DEVICE=/dev/null CI=true bash -c 'source "$1/Tests/shell/lib.sh"; require_fuse "a suite"; echo runs' _ "$here" 2>&1)"
finish
