#!/usr/bin/env bash
# `layerfs update` on real files and real mounts: each change kind alone and mixed, checked
# byte for byte and field by field against an independent model (Tests/shell/update_tool.py);
# two writers at once and a third holding the lock; updates killed at random points; updates
# under a mount with readers hashing every layer; a full filesystem; bad input.
# Usage: scripts/test-update.sh LAYERFS
# Environment: UPDATE_KILLS (default 50) killed updates; UPDATE_CONCURRENT (default 100)
# updates per concurrent writer; UPDATE_LIVE (default 20) updates under the mount.
set -uo pipefail
layerfs=$(realpath "$1")
here=$(cd "$(dirname "$0")/.." && pwd)
source "$here/Tests/shell/lib.sh"
tool=$here/Tests/shell/update_tool.py
kills=${UPDATE_KILLS:-50}
concurrent=${UPDATE_CONCURRENT:-100}
live=${UPDATE_LIVE:-20}

require_fuse "the update tests (some of them mount)"
work=$(mktemp -d /tmp/layerfs-update-XXXXXX)
m=$work/mnt; small=$work/small; mkdir -p "$m" "$small"
pids_started=()
cleanup() {
    for p in "${pids_started[@]}"; do kill "$p" 2>/dev/null; done
    wait 2>/dev/null
    release "$m" "$work/mnt-small" "$small"
    rm -rf "$work"
}
trap cleanup EXIT
cd "$work" || exit 1
v=$work/vol
"$layerfs" init "$v" >/dev/null

# Times: each call gets the next minute, so that every updated_at says which call wrote it.
tick=0
next_time() { tick=$((tick + 1)); printf '2025-03-01T%02d:%02d:00Z' $((tick / 60 % 24)) $((tick % 60)); }
region_sum() { python3 "$tool" region-sum "$1"; }
index_field() { python3 -c 'import json,sys; print(json.load(open(sys.argv[1] + "/index.json")).get(sys.argv[2]))' "$1" "$2"; }
layer_ids() { python3 -c 'import json,sys; print(" ".join(str(l["layer_id"]) for l in sorted(json.load(open(sys.argv[1] + "/index.json"))["layers"], key=lambda l: l["layer_id"])))' "$1"; }
# The files of one generation, to tell later that nothing was written.
save_gen() { mkdir -p "$2"; cp "$1/region.mmap" "$1/index.json" "$2/"; }
same_gen() { cmp -s "$1/region.mmap" "$2/region.mmap" && cmp -s "$1/index.json" "$2/index.json"; }
# Hidden siblings (the writer's scratch directories) beside a dimension; the lock file is not one.
siblings() { local d=$1; find "$(dirname "$d")" -maxdepth 1 -name ".$(basename "$d").*" ! -name ".$(basename "$d").lock" -printf '%f\n' | sort | paste -sd' '; }
# verify, allowing only leftovers of killed writers and notes
verify_clean_but_leftovers() {
    local out rc=0
    out=$("$layerfs" verify "$1" 2>&1) || rc=$?
    [ $rc -eq 0 ] && return 0
    # every line that names a problem must be a leftover
    if grep -v -e 'leftover' -e 'note' -e '^[^ ]*: [0-9]* dimensions' -e 'problem' <<<"$out" | grep -q .; then
        echo "$out" | head -5; return 1
    fi
    return 0
}

# ---- the starting dimension: 8 layers of assorted sizes (one empty), unknown index fields
mkdir in0
for i in 1 2 3 4 5 6 7; do head -c $((i * 3001 + 17)) /dev/urandom > in0/layer-00$i; done
: > in0/layer-008
"$layerfs" pack --dimension 1 --time 2025-01-01T00:00:00Z in0 "$v/consciousness/D01" >/dev/null
d=$v/consciousness/D01
# Unknown fields, top level and in layer 6, must survive every rewrite (the spec).
python3 - "$d" <<'PY'
import json, os, sys
p = sys.argv[1] + "/index.json"
i = json.load(open(p))
i["x_producer"] = {"tool": "test-update", "n": 1}
for l in i["layers"]:
    if l["layer_id"] == 6:
        l["x_note"] = "kept"
json.dump(i, open(p + ".tmp", "w"), indent=1)
os.rename(p + ".tmp", p)
PY
expect "the starting dimension verifies" "$layerfs" verify "$v"
created=$(index_field "$d" created_at)

# change NAME DIM ARGS...: `layerfs update DIM ARGS --time T`, then the dimension must be what
# the model says (compare), the output one line per change and then the new region checksum,
# and verify clean. With stdin_file set, it is the command's stdin and ID=- in ARGS reads it.
stdin_file=""
change() {
    local name=$1 dim=$2; shift 2
    local t out rc=0 nchanges=0 a model_args=() printed
    t=$(next_time)
    for a in "$@"; do
        case $a in --put | --put-next | --delete | --keywords | --frequency | --name) nchanges=$((nchanges + 1)) ;; esac
        if [ -n "$stdin_file" ] && [[ $a == *=- ]]; then model_args+=("${a%-}$stdin_file"); else model_args+=("$a"); fi
    done
    python3 "$tool" snap "$dim" > "$work/before.json"
    python3 "$tool" expect "$work/before.json" "${model_args[@]}" --time "$t" > "$work/expected.json"
    out=$("$layerfs" update "$dim" "$@" --time "$t" < "${stdin_file:-/dev/null}" 2>&1) || rc=$?
    if [ $rc -ne 0 ]; then fail "$name" "exit $rc: ${out:0:400}"; return; fi
    # The last line names the new region checksum (`sha256:HEX`, alone or in pack's summary line).
    printed=$(tail -1 <<<"$out" | grep -oE 'sha256:[0-9a-f]{64}' | tail -1)
    local problems
    problems=$(python3 "$tool" compare "$dim" "$work/expected.json" --printed "$printed" 2>&1)
    if [ -n "$problems" ]; then fail "$name" "$(paste -sd';' <<<"$problems" | head -c 600)"; return; fi
    if [ "$(wc -l <<<"$out")" -ne $((nchanges + 1)) ] || [ -z "$printed" ]; then
        fail "$name" "output is not one line per change ($nchanges) then sha256:...: $(paste -sd'|' <<<"$out")"; return
    fi
    if ! "$layerfs" verify "$(dirname "$(dirname "$dim")")" >"$work/verify.out" 2>&1; then
        fail "$name" "verify: $(head -3 "$work/verify.out" | paste -sd';')"; return
    fi
    if [ -n "$(siblings "$dim")" ]; then fail "$name" "left behind: $(siblings "$dim")"; return; fi
    if [ "$(ls -A "$dim" | paste -sd' ')" != "index.json region.mmap" ]; then fail "$name" "in the dimension: $(ls -A "$dim" | paste -sd' ')"; return; fi
    ok "$name"
}

# ---- each change kind alone
printf 'replacement two\n' > f-two
head -c 20000 /dev/urandom > f-new20
head -c 5000 /dev/urandom > f-next
head -c 7777 /dev/urandom > f-stdin
change "put: replace layer 2" "$d" --put 2=f-two
change "put: a new layer 20" "$d" --put 20=f-new20
change "put-next: takes the next free id (21)" "$d" --put-next f-next
expect_eq "put-next: the ids now" "1 2 3 4 5 6 7 8 20 21" "$(layer_ids "$d")"
stdin_file=f-stdin change "put from stdin: layer 3=-" "$d" --put 3=-
change "delete layer 20" "$d" --delete 20
change "keywords of layer 4" "$d" --keywords 4=alpha,beta,gamma
change "keywords with escapes (a\\,b is one keyword, c\\\\d holds a backslash)" "$d" --keywords '4=a\,b,c\\d'
expect_eq "keywords with escapes: as the index has them" '["a,b", "c\\d"]' \
    "$(python3 -c 'import json,sys; print(json.dumps([l["keywords"] for l in json.load(open(sys.argv[1]))["layers"] if l["layer_id"] == 4][0]))' "$d/index.json")"
change "keywords of layer 4" "$d" --keywords 4=alpha,beta,gamma
change "frequency of layer 4" "$d" --frequency 4=2.5
change "keywords and frequency of layer 6 (with an unknown field)" "$d" --keywords 6=x --frequency 6=1e-05
change "name" "$d" --name Feelings
expect_eq "name: as given" "Feelings" "$(index_field "$d" dimension_name)"
expect_eq "created_at kept through every update" "$created" "$(index_field "$d" created_at)"
cp "$work/in0/layer-007" f-same
change "put of the same bytes: layer 7 keeps its updated_at" "$d" --put 7=f-same
: > f-empty
change "put an empty layer over layer 1" "$d" --put 1=f-empty
change "put a layer and its keywords and frequency in one call (new id 30)" "$d" --put 30=f-next --keywords 30=k1,k2 --frequency 30=0.5
# --time: without it, updated_at is now (whole seconds, Z)
before=$(date -u +%s)
out=$("$layerfs" update "$d" --put 2=f-new20 2>&1); rc=$?
after=$(date -u +%s)
expect_eq "no --time: exit 0" 0 "$rc"
ua=$(index_field "$d" updated_at)
expect "no --time: updated_at is now, RFC 3339 UTC whole seconds ($ua)" bash -c \
    "[[ '$ua' =~ ^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}Z\$ ]] && s=\$(date -u -d '$ua' +%s) && [ \$s -ge $((before - 1)) ] && [ \$s -le $((after + 1)) ]"
expect_eq "no --time: the changed layer's updated_at is the index's" "$ua" \
    "$(python3 -c 'import json,sys; print([l["updated_at"] for l in json.load(open(sys.argv[1]))["layers"] if l["layer_id"] == 2][0])' "$d/index.json")"

# ---- mixed, in one call: one new generation
head -c 12345 /dev/urandom > f-mix1; head -c 4096 /dev/urandom > f-mix2; head -c 100 /dev/urandom > f-mixstdin
stdin_file=f-mixstdin change "mixed: put, put-next, stdin, delete, keywords, frequency, name, time" "$d" \
    --put 5=f-mix1 --put-next f-mix2 --put 7=- --delete 3 --keywords 8=a,b --frequency 8=3 --name Mixed
change "mixed, file by file" "$d" --file-by-file --put 4=f-mix2 --delete 30 --keywords 2=z --name Emotion
# keywords at the limit: 65 536 bytes joined is accepted
kw=$(python3 -c 'print(",".join(["k" * 1023] * 64))')   # 64*1023 + 63 = 65535
change "keywords of 65 535 bytes" "$d" --keywords 6="$kw"
kw=$(python3 -c 'print(",".join(["k" * 1023] * 63 + ["k" * 1024]))')   # 65536
change "keywords of exactly 65 536 bytes" "$d" --keywords 6="$kw"
change "back to short keywords" "$d" --keywords 6=x

# ---- a dimension from another producer: layers out of id order, padding between them, an
# empty layer, optional fields left out (no region_checksum, names, keywords...): kept layers
# keep their bytes, and the new generation has the writer's layout and says every field.
o=$v/consciousness/D15
python3 - "$o" <<'PY'
import hashlib, json, os, struct, sys
d = sys.argv[1]; os.makedirs(d)
l1, l2 = os.urandom(100), os.urandom(5000)
body = bytearray(16384 - 256)
def put(off, data): body[off - 256:off - 256 + len(data)] = data
put(4096, l2); put(12288, l1)
h = hashlib.sha256(bytes(body)).digest()
open(d + "/region.mmap", "wb").write(struct.pack("<4sIIIQ", b"MMAP", 1, 15, 3, 16384) + h + bytes(200) + bytes(body))
s = lambda b: "sha256:" + hashlib.sha256(b).hexdigest()
json.dump({"dimension_id": 15, "version": 1, "created_at": "2020-01-01T00:00:00Z", "updated_at": "2020-02-02T00:00:00Z",
           "layer_count": 3, "total_size": 16384,
           "layers": [{"layer_id": 7, "offset": 300, "size": 0, "checksum": s(b"")},
                      {"layer_id": 1, "offset": 12288, "size": 100, "checksum": s(l1)},
                      {"layer_id": 2, "offset": 4096, "size": 5000, "checksum": s(l2)}]}, open(d + "/index.json", "w"))
PY
expect "another producer's dimension verifies" "$layerfs" verify "$o"
expect "dry-run on a dimension no writer has locked yet" "$layerfs" update "$o" --dry-run --put 3=f-two
expect_eq "dry-run: creates no lock file" "absent" "$([ -e "$v/consciousness/.D15.lock" ] && echo present || echo absent)"
change "another producer's dimension: a put" "$o" --put 3=f-two
change "another producer's dimension: then keywords alone" "$o" --keywords 1=from,elsewhere

# ---- the new files take the modes and owners of the ones they replace
modes() { stat -c '%a %u:%g' "$1/region.mmap" "$1/index.json" | paste -sd' '; }
chmod 640 "$o/region.mmap"; chmod 600 "$o/index.json"; chown 65534:65534 "$o/region.mmap" "$o/index.json"
for how in "--put 3=f-next" "--file-by-file --put 3=f-two" "--keywords 2=m" "--file-by-file --frequency 2=2"; do
    "$layerfs" update "$o" $how >/dev/null 2>&1
    expect_eq "modes and owners kept: update $how" "640 65534:65534 600 65534:65534" "$(modes "$o")"
done

# ---- --dry-run: prints what the real call prints, writes nothing
save_gen "$d" "$work/dry"
t=$(next_time)
dry=$("$layerfs" update "$d" --dry-run --put 2=f-two --put-next f-next --frequency 4=9 --time "$t" 2>&1); dry_rc=$?
expect_eq "dry-run: exit 0" 0 "$dry_rc"
expect "dry-run: nothing written" same_gen "$d" "$work/dry"
expect_eq "dry-run: nothing left beside the dimension" "" "$(siblings "$d")"
real=$("$layerfs" update "$d" --put 2=f-two --put-next f-next --frequency 4=9 --time "$t" 2>&1)
expect_eq "dry-run: printed the change lines the real call then printed" "$(head -n -1 <<<"$real")" "$(head -3 <<<"$dry")"
expect_eq "the real call's checksum is the region's" "$(region_sum "$d")" "$(tail -1 <<<"$real" | grep -oE 'sha256:[0-9a-f]{64}' | tail -1)"

# ---- a dimension that does not exist is created
change_new() {
    local name=$1 dim=$2 want_id=$3; shift 3
    local out rc=0
    out=$("$layerfs" update "$dim" "$@" --time 2025-04-01T00:00:00Z 2>&1) || rc=$?
    if [ $rc -ne 0 ]; then fail "$name" "exit $rc: ${out:0:300}"; return; fi
    local got
    got=$(python3 -c 'import json,sys; i=json.load(open(sys.argv[1] + "/index.json")); print(i["dimension_id"], i["layer_count"], i["updated_at"], i.get("created_at"))' "$dim")
    expect_eq "$name" "$want_id 1 2025-04-01T00:00:00Z 2025-04-01T00:00:00Z" "$got"
    expect "$name: bytes" cmp <(python3 "$tool" layer "$dim" 1) f-two
}
change_new "a new consciousness dimension D30" "$v/consciousness/D30" 30 --put 1=f-two
change_new "a new proto-dimension" "$v/proto/fresh" 0 --put-next f-two
expect_eq "the new dimension's name is the canonical one" "D30" "$(index_field "$v/consciousness/D30" dimension_name)"
expect "the volume verifies" "$layerfs" verify "$v"

# ---- the lock file: beside the dimension, mode 0644, pid and host on one line
lockf=$v/consciousness/.D01.lock
expect "lock file .D01.lock exists beside D01" test -f "$lockf"
expect_eq "lock file mode" "644" "$(stat -c %a "$lockf" 2>/dev/null)"
# The holder's line is there while the lock is held (checked on a running update below); a
# writer that let go may leave the file empty, or one line.
expect "lock file: empty or one line once the writer let go" test "$(wc -l < "$lockf")" -le 1
echo "999999 gone-host" > "$lockf"   # a holder that is gone
out=$("$layerfs" verify "$v" 2>&1); rc=$?
expect_eq "verify: a lock file whose holder is gone is not a failure" 0 "$rc"
expect "verify: ... but a note names it" grep -q '\.D01\.lock' <<<"$out"

# ---- bad input: a clear error, nothing changed, nothing left behind
bad() { # NAME PATTERN ARGS...
    local name=$1 pattern=$2; shift 2
    save_gen "$d" "$work/bad"
    expect_fail "bad input: $name" "$pattern" "$layerfs" update "$d" "$@"
    expect "bad input: $name: region and index unchanged" same_gen "$d" "$work/bad"
    expect_eq "bad input: $name: nothing left behind" "" "$(siblings "$d")"
}
bad "a missing file" "no-such-file" --put 2=no-such-file
bad "a missing file among good changes" "no-such-file" --put 3=f-two --put 2=no-such-file --delete 4
bad "a directory as file" "'?in0'?" --put 2=in0
bad "the same id put twice" "2" --put 2=f-two --put 2=f-next
bad "the same id put and deleted" "2" --put 2=f-two --delete 2
bad "the same id deleted twice" "4" --delete 4 --delete 4
bad "delete of an absent id" "99" --delete 99
bad "keywords of an absent id" "99" --keywords 99=a
bad "keywords of a layer deleted in the same call" "4" --delete 4 --keywords 4=a
bad "stdin given to two layers" "stdin|-" --put 2=- --put 3=-
bad "frequency of an absent id" "99" --frequency 99=2
kw=$(python3 -c 'print(",".join(["k" * 1023] * 63 + ["k" * 1025]))')   # 65537
bad "keywords over 64 KiB (65 537 bytes)" "65536|65 536|64 KiB" --keywords 6="$kw"
bad "keywords over 64 KiB once escaped (65 535 k and a backslash: 65 537 bytes written)" "65536|65 536|64 KiB" --keywords 6="$(python3 -c 'print("k" * 65535 + "\\\\")')"
bad "a frequency that is not a number" "abc" --frequency 4=abc
bad "layer id 0" "0" --put 0=f-two
bad "a layer id that is not a number" "abc" --put abc=f-two
bad "a time that is not RFC 3339" "yesterday" --put 2=f-two --time yesterday
head -c 40000 /dev/urandom > f-40k
size_now=$(stat -c %s "$d/region.mmap")
save_gen "$d" "$work/bad"
expect_fail "bad input: a region over MMAP_MAX_SIZE" "$((size_now + 4096))|max" env MMAP_MAX_SIZE=$((size_now + 4096)) "$layerfs" update "$d" --put 2=f-40k
expect "bad input: a region over MMAP_MAX_SIZE: unchanged" same_gen "$d" "$work/bad"
expect_fail "bad input: a dimension directory misspelt (D1)" "D01" "$layerfs" update "$v/consciousness/D1" --put 1=f-two
expect_eq "bad input: misspelt: nothing created" "absent" "$([ -e "$v/consciousness/D1" ] && echo present || echo absent)"
# A half-written current generation (file by file, stopped between the two renames).
"$layerfs" pack --dimension 1 in0 "$work/other/consciousness/D01" >/dev/null 2>&1
cp "$work/other/consciousness/D01/region.mmap" "$d/.region.tmp" && mv "$d/.region.tmp" "$d/region.mmap"
save_gen "$d" "$work/half"
expect_fail "bad input: a half-written current generation" "half|generation|region_checksum" "$layerfs" update "$d" --put 2=f-two
expect "bad input: half-written: unchanged" same_gen "$d" "$work/half"
cp "$work/bad/region.mmap" "$d/.region.tmp" && mv "$d/.region.tmp" "$d/region.mmap"
expect "bad input: after all of them the volume verifies" "$layerfs" verify "$v"
change "an update after the refusals" "$d" --put 2=f-two

# ---- concurrency: two writers, $concurrent updates each of different layers, at once
c=$v/consciousness/D02
mkdir in2; for i in $(seq 1 $((2 * concurrent))); do printf 'initial %d\n' "$i" > "in2/$(printf 'layer-%03d' "$i")"; done
"$layerfs" pack --dimension 2 in2 "$c" >/dev/null
mkdir conc; for i in $(seq 1 $((2 * concurrent))); do printf 'writer %s layer %d\n' $((i <= concurrent ? 1 : 2)) "$i" > "conc/$i"; done
writer() { # FIRST COUNT MODE
    local i fails=0
    for ((i = $1; i < $1 + $2; i++)); do
        local mode=""; [ "$3" = alternate ] && [ $((i % 2)) -eq 0 ] && mode=--file-by-file
        "$layerfs" update "$c" $mode --put "$i=conc/$i" >/dev/null 2>>"$work/writer.$1.err" || fails=$((fails + 1))
    done
    echo "$fails" > "$work/writer.$1.fails"
}
start=$(date +%s.%N)
writer 1 "$concurrent" swap & w1=$!
writer $((concurrent + 1)) "$concurrent" alternate & w2=$!
wait $w1 $w2
elapsed=$(printf %.1f "$(echo "$(date +%s.%N) - $start" | bc)")
echo "  two writers: $((2 * concurrent)) updates in ${elapsed}s"
expect_eq "concurrent: no update failed" "0 0" "$(cat "$work/writer.1.fails") $(cat "$work/writer.$((concurrent + 1)).fails")"
[ -s "$work/writer.1.err" ] && head -3 "$work/writer.1.err"
missing=$(python3 - "$c" "$work/conc" $((2 * concurrent)) <<'PY'
import json, sys
d, conc, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
index = json.load(open(d + "/index.json")); region = open(d + "/region.mmap", "rb").read()
layers = {l["layer_id"]: region[l["offset"]:l["offset"] + l["size"]] for l in index["layers"]}
bad = [i for i in range(1, n + 1) if layers.get(i) != open("%s/%d" % (conc, i), "rb").read()]
print(len(bad), "of", n, "missing", bad[:10] if bad else "", "layers", len(layers))
PY
)
expect_eq "concurrent: every one of the $((2 * concurrent)) changes is present" "0 of $((2 * concurrent)) missing  layers $((2 * concurrent))" "$missing"
expect "concurrent: verify clean" "$layerfs" verify "$v"
expect_eq "concurrent: nothing left behind" "" "$(siblings "$c")"

# ---- a third process holds the lock: update --wait 1 fails within 2 s naming it
lockf=$v/consciousness/.D02.lock
hold_lock() { # SECONDS: holds the lock as a writer would, pid and host written first
    (
        exec 9>>"$lockf"
        flock -x 9
        echo "$BASHPID $(hostname)" > "$lockf"
        touch "$work/locked"
        exec sleep "$1"
    ) &
    holder=$!; pids_started+=("$holder")
    for _ in $(seq 100); do [ -e "$work/locked" ] && break; sleep 0.02; done
    rm -f "$work/locked"
}
hold_lock 30
save_gen "$c" "$work/held"
timed() { local t0=${EPOCHREALTIME/./}; out=$("$@" 2>&1); rc=$?; elapsed_ms=$(( (${EPOCHREALTIME/./} - t0) / 1000 )); }
timed "$layerfs" update "$c" --wait 1 --put 1=f-two
echo "  update --wait 1 against a held lock: exit $rc after $elapsed_ms ms: $out"
expect_eq "lock held: update --wait 1 exits 1" 1 "$rc"
expect "lock held: ... within 2 s, having waited about 1 s ($elapsed_ms ms)" test "$elapsed_ms" -lt 2000 -a "$elapsed_ms" -ge 900
expect "lock held: ... naming the holder's pid ($holder)" grep -qw "$holder" <<<"$out"
expect "lock held: ... and host" grep -qF "$(hostname)" <<<"$out"
expect "lock held: nothing changed" same_gen "$c" "$work/held"
expect_eq "lock held: the update that gave up left the holder's line in the lock file" "$holder $(hostname)" "$(cat "$lockf")"
timed "$layerfs" pack --wait 1 --dimension 2 in2 "$c"
echo "  pack --wait 1 against a held lock: exit $rc after $elapsed_ms ms: $out"
expect_eq "lock held: pack --wait 1 exits 1" 1 "$rc"
expect "lock held: pack ... within 2 s ($elapsed_ms ms)" test "$elapsed_ms" -lt 2000 -a "$elapsed_ms" -ge 900
expect "lock held: pack ... naming the holder's pid" grep -qw "$holder" <<<"$out"
expect "lock held: pack changed nothing" same_gen "$c" "$work/held"
timed "$layerfs" update "$c" --wait 1 --dry-run --put 1=f-two
echo "  update --dry-run --wait 1 against a held lock: exit $rc after $elapsed_ms ms"
kill "$holder"; wait "$holder" 2>/dev/null
hold_lock 1
timed "$layerfs" update "$c" --wait 5 --put 1=f-two
expect "lock released after 1 s: update --wait 5 waits for it and succeeds (exit $rc, $elapsed_ms ms)" test "$rc" -eq 0 -a "$elapsed_ms" -ge 500
expect "lock: the update that waited is there" cmp <(python3 "$tool" layer "$c" 1) f-two
wait "$holder" 2>/dev/null
expect "lock: verify clean after the holder left" "$layerfs" verify "$v"

# ---- killed mid-update: always exactly the old or the new generation
k=$v/consciousness/D03
mkdir in3; for i in $(seq -w 1 16); do head -c $((4 << 20)) /dev/urandom > "in3/layer-0$i"; done
"$layerfs" pack --dimension 3 in3 "$k" >/dev/null
head -c $((4 << 20)) /dev/urandom > kill-b
cp in3/layer-005 kill-a
sum_a=$(region_sum "$k")
t0=${EPOCHREALTIME/./}
"$layerfs" update "$k" --put 5=kill-b >/dev/null
full_ms=$(( (${EPOCHREALTIME/./} - t0) / 1000 ))
sum_b=$(region_sum "$k")
t0=${EPOCHREALTIME/./}
"$layerfs" update "$k" --put 5=kill-a >/dev/null
t1=$(( (${EPOCHREALTIME/./} - t0) / 1000 )); [ "$t1" -lt "$full_ms" ] && full_ms=$t1   # the warm one
cur=a
klock=$v/consciousness/.D03.lock; lock_named=0; lock_wrong=0; stale_seen=0; stale_noted=0
outcomes_old=0; outcomes_new=0; outcomes_other=0; finished=0; next_failed=0; verify_bad=0; leftovers=0
RANDOM=7
for ((n = 0; n < kills; n++)); do
    if [ $cur = a ]; then want=b; else want=a; fi
    delay_ms=$(( RANDOM % (full_ms * 13 / 10 + 1) ))
    "$layerfs" update "$k" --put 5=kill-$want >/dev/null 2>&1 &
    p=$!
    sleep "$(printf '%d.%03d' $((delay_ms / 1000)) $((delay_ms % 1000)))"
    holder_line=$(cat "$klock" 2>/dev/null)
    kill -KILL "$p" 2>/dev/null
    if wait "$p" 2>/dev/null; then finished=$((finished + 1))
    elif [ -n "$holder_line" ]; then
        # The running update held the lock: its line names it, one line, pid and host.
        if grep -qw "$p" <<<"$holder_line" && grep -qF "$(hostname)" <<<"$holder_line" && [ "$(wc -l <<<"$holder_line")" -eq 1 ]; then
            lock_named=$((lock_named + 1))
        else lock_wrong=$((lock_wrong + 1)); echo "  lock file during update $p: $holder_line"; fi
        # Killed while holding it: the line stays, and verify notes a holder that is gone.
        if [ -s "$klock" ]; then
            stale_seen=$((stale_seen + 1))
            vout=$("$layerfs" verify "$v" 2>&1)   # exit 1 when a leftover is there too
            grep -q '\.D03\.lock: note' <<<"$vout" && stale_noted=$((stale_noted + 1))
        fi
    fi
    r=$(region_sum "$k"); i=$(index_field "$k" region_checksum)
    if [ "$r" = "$i" ] && [ "$r" = "$(eval echo \$sum_$cur)" ]; then outcomes_old=$((outcomes_old + 1))
    elif [ "$r" = "$i" ] && [ "$r" = "$(eval echo \$sum_$want)" ]; then outcomes_new=$((outcomes_new + 1)); cur=$want
    else outcomes_other=$((outcomes_other + 1)); echo "  kill $n after $delay_ms ms: region $r, index $i"; fi
    verify_clean_but_leftovers "$v" || verify_bad=$((verify_bad + 1))
    [ -n "$(siblings "$k")" ] && leftovers=$((leftovers + 1))
    if [ $cur = a ]; then want=b; else want=a; fi
    if "$layerfs" update "$k" --put 5=kill-$want >/dev/null 2>>"$work/kill-next.err"; then cur=$want; else next_failed=$((next_failed + 1)); fi
    find "$v/consciousness" -maxdepth 1 -name '.D03.*' ! -name '.D03.lock' -exec rm -rf {} +
done
echo "  $kills updates killed at random points (0 to $((full_ms * 13 / 10)) ms; a whole update takes $full_ms ms):" \
    "$outcomes_old old generation, $outcomes_new new, $outcomes_other neither; $finished had finished; $leftovers left a sibling behind"
echo "  lock file read during $((lock_named + lock_wrong)) running updates: $lock_named named the update's pid and host; $stale_seen kills left a holder line, verify noted $stale_noted of them"
expect_eq "killed: always exactly the old or the new generation" 0 "$outcomes_other"
expect "lock file: seen naming a running update's pid and host (one line)" test "$lock_named" -gt 0 -a "$lock_wrong" -eq 0
expect_eq "verify: notes each lock file left by a killed holder" "$stale_seen" "$stale_noted"
expect_eq "killed: verify clean apart from leftovers" 0 "$verify_bad"
expect_eq "killed: the next update always succeeds" 0 "$next_failed"
[ -s "$work/kill-next.err" ] && head -3 "$work/kill-next.err"
expect "killed: the dimension verifies at the end" "$layerfs" verify "$k"
# File by file, killed: region and index each of one generation; the one half-way state the
# spec allows (new region, old index) is reported, refused by the next update, and repaired
# here by putting the old region back.
fbf_kills=$(( kills / 5 )); half=0; fbf_other=0; half_refused=0
save_gen "$k" "$work/gen-$cur"
if [ $cur = a ]; then other=b; else other=a; fi
"$layerfs" update "$k" --put 5=kill-$other >/dev/null && save_gen "$k" "$work/gen-$other"
cur=$other
for ((n = 0; n < fbf_kills; n++)); do
    if [ $cur = a ]; then want=b; else want=a; fi
    delay_ms=$(( RANDOM % (full_ms * 13 / 10 + 1) ))
    "$layerfs" update "$k" --file-by-file --put 5=kill-$want >/dev/null 2>&1 &
    p=$!
    sleep "$(printf '%d.%03d' $((delay_ms / 1000)) $((delay_ms % 1000)))"
    kill -KILL "$p" 2>/dev/null; wait "$p" 2>/dev/null
    r=$(region_sum "$k"); i=$(index_field "$k" region_checksum)
    sc=$(eval echo \$sum_$cur); sw=$(eval echo \$sum_$want)
    if [ "$r" = "$i" ] && [ "$r" = "$sw" ]; then cur=$want
    elif [ "$r" = "$i" ] && [ "$r" = "$sc" ]; then :
    elif [ "$r" = "$sw" ] && [ "$i" = "$sc" ]; then
        half=$((half + 1))
        "$layerfs" update "$k" --put 5=kill-$cur >/dev/null 2>&1 || half_refused=$((half_refused + 1))
        cp "$work/gen-$cur/region.mmap" "$k/.restore" && mv "$k/.restore" "$k/region.mmap"
    else fbf_other=$((fbf_other + 1)); echo "  file-by-file kill $n after $delay_ms ms: region $r, index $i"; fi
    find "$k" -mindepth 1 ! -name region.mmap ! -name index.json -exec rm -rf {} +
done
echo "  $fbf_kills file-by-file updates killed: $half left the half-way state (new region, old index)"
expect_eq "killed file by file: region and index each one generation's, never another state" 0 "$fbf_other"
expect_eq "killed file by file: the next update refuses the half-way state" "$half" "$half_refused"
expect "killed file by file: the dimension verifies at the end" "$layerfs" verify "$k"
rm -rf "$k" in3

# ---- under a mount: readers hash every layer while updates land
# Layers describe themselves as soak_readers.py expects: "layer-NNN gen G\n" repeated.
write_layer() { local name; printf -v name 'layer-%03d' "$1"; yes "$name gen $2" | head -c $(( 64 + ($1 * 7919 + $2 * 131) % 24000 )) > "$3"; }
mkdir in4 in5
for i in $(seq 1 16); do write_layer "$i" 0 "in4/$(printf 'layer-%03d' "$i")"; done
for i in 1 2 3 4; do head -c 50000 /dev/urandom > "in5/layer-00$i"; done
"$layerfs" pack --dimension 4 in4 "$v/consciousness/D04" >/dev/null
"$layerfs" pack --dimension 5 in5 "$v/consciousness/D05" >/dev/null
# Prefetch off: the node-id checks below count READs in the debug log, and pushed layers need none.
"$layerfs" mount --debug --log-file "$work/daemon.log" -o prefetch_kb=0,prefetch_random_mb=0 "$v" "$m"
: > "$work/deleted"
python3 "$here/Tests/shell/soak_readers.py" "$m/D04" "$work/stop" "$work/deleted" --oneshot 3 --holders 1 --scanners 1 \
    > "$work/readers.txt" 2> "$work/readers.err" &
readers=$!; pids_started+=("$readers")
sleep 0.5
# $live updates of one random layer each; the delay until the mount shows the new bytes
python3 - "$layerfs" "$v/consciousness/D04" "$m/D04" "$live" "$work/changed.txt" > "$work/live.txt" <<'PY'
import os, random, subprocess, sys, time
layerfs, dim, mnt, n, changed_log = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4]), sys.argv[5]
random.seed(4)
def content(i, g):
    name = b"layer-%03d" % i
    line = b"%s gen %d\n" % (name, g)
    size = 64 + (i * 7919 + g * 131) % 24000
    return (line * (size // len(line) + 1))[:size]
delays, changed = [], []
for g in range(1, n + 1):
    i = random.choice([x for x in range(1, 17) if x != 1])   # layer 1 is never changed
    path = os.path.join(os.path.dirname(dim), ".in-%d" % g)
    open(path, "wb").write(content(i, g))
    subprocess.run([layerfs, "update", dim, "--put", "%d=%s" % (i, path)], check=True, stdout=subprocess.DEVNULL)
    os.unlink(path)
    t0 = time.monotonic()
    want = content(i, g)
    while True:
        try:
            if open("%s/layer-%03d" % (mnt, i), "rb").read() == want:
                break
        except OSError:
            pass
        if time.monotonic() - t0 > 5:
            break
        time.sleep(0.002)
    delays.append((time.monotonic() - t0) * 1000)
    changed.append(i)
open(changed_log, "w").write(" ".join(map(str, changed)) + "\n")
print("%.1f %.1f %.1f" % (sorted(delays)[len(delays) // 2], max(delays), min(delays)))
PY
read -r live_median live_max live_min < "$work/live.txt"
echo "  $live updates under the mount: visible after median $live_median ms, max $live_max ms"
expect "live: each update visible within 1 s (max $live_max ms)" awk "BEGIN { exit !($live_max < 1000) }"
sleep 1
touch "$work/stop"; wait "$readers"
r=$(cat "$work/readers.txt"); echo "  readers: $r"; head -3 "$work/readers.err"
expect_eq "live: 0 reads matched no generation" 0 "$(sed -E 's/.*mismatches=([0-9]+).*/\1/' <<<"$r")"
expect_eq "live: 0 read errors" 0 "$(sed -E 's/.*errors=([0-9]+).*/\1/' <<<"$r")"
python3 "$here/Tests/shell/volume_tool.py" expect "$v" "$work/exp"
expect "live: the mount serves the last generation: every layer of D04 as region.mmap has it" diff -r "$work/exp/D04" "$m/D04"
# Node ids, from the daemon's --debug log: a layer's node is slot<<48 | tag<<32 | layer_id.
# Over the whole run, a layer never changed was read through one node only.
nodes_of() { # DIMSLOT_HEX_PREFIX-less: layer id -> distinct node ids in READ lines of the log
    awk -v id="$1" -v slot="$2" '/READ node=/ { match($0, /READ node=[0-9]+/); n = substr($0, RSTART + 10, RLENGTH - 10) + 0;
        if (n % 4294967296 == id && int(n / 281474976710656) == slot) s[n] = 1 } END { c = 0; for (k in s) c++; print c }' "$work/daemon.log"
}
slot_of() { # the slot of a dimension, from any READ of one of its layers
    awk -v want="$1" '/READ node=/ { match($0, /READ node=[0-9]+/); n = substr($0, RSTART + 10, RLENGTH - 10) + 0; print int(n / 281474976710656) }' "$work/daemon.log" | head -1
}
# The debug log names the node of each READ; awk's doubles hold 2^53 exactly, and node ids
# of a volume with few dimensions stay far below (slot < 32).
cat "$m/D04/layer-001" > /dev/null
s4=$(awk '/READ node=/ { match($0, /READ node=[0-9]+/); n = substr($0, RSTART + 10, RLENGTH - 10) + 0; if (n % 4294967296 == 1) print int(n / 281474976710656) }' "$work/daemon.log" | sort | uniq -c | sort -rn | awk 'NR == 1 { print $2 }')
expect_eq "live: layer 1 of D04 (never changed) was read through one node only" 1 "$(nodes_of 1 "$s4")"
# Precisely, on D05 (no readers there): after an update that changes only layer 3, reading
# layer 1 again asks the daemon nothing (its node, and so its cached pages, stayed).
cat "$m/D05/layer-001" "$m/D05/layer-003" > /dev/null
ino1=$(stat -c %i "$m/D05/layer-001")
reads_log() { grep -c 'READ node=' "$work/daemon.log"; }
s5=$(tail -50 "$work/daemon.log" | awk '/READ node=/ { match($0, /READ node=[0-9]+/); n = substr($0, RSTART + 10, RLENGTH - 10) + 0; if (n % 4294967296 == 3) print int(n / 281474976710656) }' | tail -1)
l1_before=$(nodes_of 1 "$s5"); l3_before=$(nodes_of 3 "$s5")
r1_before=$(awk -v slot="$s5" '/READ node=/ { match($0, /READ node=[0-9]+/); n = substr($0, RSTART + 10, RLENGTH - 10) + 0; if (n % 4294967296 == 1 && int(n / 281474976710656) == slot) c++ } END { print c + 0 }' "$work/daemon.log")
head -c 50000 /dev/urandom > f-d5
"$layerfs" update "$v/consciousness/D05" --put 3=f-d5 >/dev/null
for _ in $(seq 100); do cmp -s "$m/D05/layer-003" f-d5 && break; sleep 0.02; done
expect "node ids: D05's layer 3 shows its new bytes" cmp "$m/D05/layer-003" f-d5
cat "$m/D05/layer-001" > /dev/null; sleep 0.2
r1_after=$(awk -v slot="$s5" '/READ node=/ { match($0, /READ node=[0-9]+/); n = substr($0, RSTART + 10, RLENGTH - 10) + 0; if (n % 4294967296 == 1 && int(n / 281474976710656) == slot) c++ } END { print c + 0 }' "$work/daemon.log")
echo "  D05 (slot $s5): READs of layer 1 before the update $r1_before, after re-reading it $r1_after; layer 1 nodes $l1_before -> $(nodes_of 1 "$s5"), layer 3 nodes $l3_before -> $(nodes_of 3 "$s5")"
expect "node ids: the log has READs of D05's layer 1 at all (the check can see them)" test "$r1_before" -gt 0
expect_eq "node ids: re-reading the untouched layer 1 after the update causes no READ" "$r1_before" "$r1_after"
expect_eq "node ids: layer 1 was read through one node" 1 "$(nodes_of 1 "$s5")"
expect_eq "node ids: the changed layer 3 got a new node (two seen)" 2 "$(nodes_of 3 "$s5")"
expect_eq "node ids: st_ino of layer 1 unchanged" "$ino1" "$(stat -c %i "$m/D05/layer-001")"
# Metadata alone (the region's bytes, and so user.generation, stay): visible within 1 s too.
visible_ms() { # ATTR-PATH NAME VALUE: ms until getfattr shows VALUE (5000 when it never does)
    local t0=${EPOCHREALTIME/./} got
    while :; do
        got=$(getfattr --absolute-names --only-values -n "$2" "$1" 2>/dev/null)
        [ "$got" = "$3" ] && break
        [ $(( ${EPOCHREALTIME/./} - t0 )) -gt 5000000 ] && { echo 5000; return; }
        sleep 0.005
    done
    echo $(( (${EPOCHREALTIME/./} - t0) / 1000 ))
}
cat "$m/D05/layer-002" > /dev/null; sleep 0.2
r2_before=$(awk -v slot="$s5" '/READ node=/ { match($0, /READ node=[0-9]+/); n = substr($0, RSTART + 10, RLENGTH - 10) + 0; if (n % 4294967296 == 2 && int(n / 281474976710656) == slot) c++ } END { print c + 0 }' "$work/daemon.log")
"$layerfs" update "$v/consciousness/D05" --keywords 2=meta,data >/dev/null
ms_kw=$(visible_ms "$m/D05/layer-002" user.keywords "meta,data")
"$layerfs" update "$v/consciousness/D05" --file-by-file --frequency 2=0.125 >/dev/null
ms_fr=$(visible_ms "$m/D05/layer-002" user.frequency "0.125")
"$layerfs" update "$v/consciousness/D05" --name Renamed >/dev/null
ms_nm=$(visible_ms "$m/D05" user.dimension_name "Renamed")
cat "$m/D05/layer-002" > /dev/null; sleep 0.2
r2_after=$(awk -v slot="$s5" '/READ node=/ { match($0, /READ node=[0-9]+/); n = substr($0, RSTART + 10, RLENGTH - 10) + 0; if (n % 4294967296 == 2 && int(n / 281474976710656) == slot) c++ } END { print c + 0 }' "$work/daemon.log")
expect_eq "node ids: after metadata-only updates of layer 2, re-reading it causes no READ" "$r2_before" "$r2_after"
echo "  metadata-only updates visible after: keywords $ms_kw ms, frequency (file by file) $ms_fr ms, name $ms_nm ms"
expect "live: a keywords-only update visible within 1 s ($ms_kw ms)" test "$ms_kw" -lt 1000
expect "live: a frequency-only update, file by file, visible within 1 s ($ms_fr ms)" test "$ms_fr" -lt 1000
expect "live: a name-only update visible within 1 s ($ms_nm ms)" test "$ms_nm" -lt 1000
expect "live: unmount" "$layerfs" unmount "$m"

# ---- a full filesystem: the update fails cleanly, the old generation stays and is served
mount -t tmpfs -o size=8M tmpfs "$small"
"$layerfs" init "$small/vol" >/dev/null
mkdir in6; for i in 1 2 3; do head -c $((1 << 20)) /dev/urandom > "in6/layer-00$i"; done
e=$small/vol/consciousness/D01
"$layerfs" pack --dimension 1 in6 "$e" >/dev/null
save_gen "$e" "$work/full"
mkdir -p "$work/mnt-small"
"$layerfs" mount --log-file "$work/small.log" "$small/vol" "$work/mnt-small"
gen_before=$(getfattr --absolute-names --only-values -n user.generation "$work/mnt-small/D01")
head -c $((4 << 20)) /dev/urandom > f-4m
out=$("$layerfs" update "$e" --put 4=f-4m 2>&1); rc=$?
echo "  update on a full tmpfs: exit $rc: $out"
expect "ENOSPC: the update fails" test "$rc" -ne 0
expect "ENOSPC: ... saying so" grep -qi "no space\|ENOSPC" <<<"$out"
expect "ENOSPC: the old generation intact" same_gen "$e" "$work/full"
expect_eq "ENOSPC: no hidden sibling left behind" "" "$(siblings "$e")"
expect_eq "ENOSPC: nothing left inside the dimension either" "index.json region.mmap" "$(ls -A "$e" | paste -sd' ')"
sleep 1
expect_eq "ENOSPC: the mount still serves the old generation" "$gen_before" "$(getfattr --absolute-names --only-values -n user.generation "$work/mnt-small/D01" 2>&1)"
expect "ENOSPC: the mount serves its bytes" cmp "$work/mnt-small/D01/layer-002" in6/layer-002
expect "ENOSPC: verify clean" "$layerfs" verify "$small/vol"
head -c 100000 /dev/urandom > f-100k
expect "ENOSPC: an update that fits succeeds afterwards" "$layerfs" update "$e" --put 4=f-100k
for _ in $(seq 100); do cmp -s "$work/mnt-small/D01/layer-004" f-100k && break; sleep 0.02; done
expect "ENOSPC: ... and the mount serves it" cmp "$work/mnt-small/D01/layer-004" f-100k
expect "ENOSPC: unmount" "$layerfs" unmount "$work/mnt-small"
for _ in $(seq 50); do umount "$small" 2>/dev/null && break; sleep 0.1; done

finish
