#!/usr/bin/env bash
# `layerfs pack` driven as a user would, on real files: where it may write (the spec's names),
# what it does with each input entry, what it refuses, and how it says so. Needs no /dev/fuse.
# Usage: scripts/test-pack.sh LAYERFS
set -uo pipefail
layerfs=$(realpath "$1")
here=$(cd "$(dirname "$0")/.." && pwd)
source "$here/Tests/shell/lib.sh"
work=$(mktemp -d /tmp/layerfs-pack-XXXXXX)
trap 'rm -rf "$work"' EXIT
cd "$work" || exit 1
"$layerfs" init nv >/dev/null
mkdir in; printf 'one\n' > in/layer-001; printf 'two\n' > in/layer-002

# ---- --max-region-size: bytes or binary multiples (64K, 10M, 1G), in the mount's range
rs="4096 to 4611686018427387904 bytes"
expect "--max-region-size 64K" "$layerfs" pack --max-region-size 64K --dimension 3 in nv/consciousness/D03
expect "--max-region-size 10M" "$layerfs" pack --max-region-size 10M --dimension 3 in nv/consciousness/D03
expect "--max-region-size 1G" "$layerfs" pack --max-region-size 1G --dimension 3 in nv/consciousness/D03
expect "--max-region-size 4096 is a region's least size" "$layerfs" pack --max-region-size 4096 --dimension 4 nv/temp nv/consciousness/D04
expect_fail "--max-region-size 8K refuses a 12 KiB region" "over the maximum of 8192" \
    "$layerfs" pack --max-region-size 8K --dimension 3 in nv/consciousness/D03
expect_fail "--max-region-size 10MB is not a size" "^layerfs: --max-region-size 10MB: not a size \(.*64K, 10M, 1G; $rs\)" \
    "$layerfs" pack --max-region-size 10MB --dimension 3 in nv/consciousness/D03
expect_fail "--max-region-size 1.5G is not a size" "^layerfs: --max-region-size 1.5G: not a size" \
    "$layerfs" pack --max-region-size 1.5G --dimension 3 in nv/consciousness/D03
expect_fail "--max-region-size 4095" "^layerfs: --max-region-size 4095: out of range \($rs\)" \
    "$layerfs" pack --max-region-size 4095 --dimension 3 in nv/consciousness/D03
expect_fail "--max-region-size 3K" "^layerfs: --max-region-size 3K: out of range \($rs\)" \
    "$layerfs" pack --max-region-size 3K --dimension 3 in nv/consciousness/D03
expect_fail "--max-region-size 5E" "^layerfs: --max-region-size 5E: out of range \($rs\)" \
    "$layerfs" pack --max-region-size 5E --dimension 3 in nv/consciousness/D03
expect_fail "--max-region-size -1" "^layerfs: --max-region-size -1: out of range \($rs\)" \
    "$layerfs" pack --max-region-size -1 --dimension 3 in nv/consciousness/D03
expect "the volume verifies" "$layerfs" verify nv

# ---- the output's name and place follow the spec's naming rules and --dimension/--proto
refused_output() { # OUTPUT EXPECTED ARGS...: refused naming EXPECTED, nothing created
    local output=$1 expected=$2; shift 2
    expect_fail "refuses $* $output" "^layerfs: output '$output' does not match .*: expected '$expected'\$" "$layerfs" pack "$@" in "$output"
    expect_eq "nothing written for $output" "absent" "$([ -e "$output" ] && echo present || echo absent)"
}
refused_output nv/consciousness/D5 nv/consciousness/D05 --dimension 5
refused_output nv/consciousness/D005 nv/consciousness/D05 --dimension 5
refused_output nv/consciousness/D00 nv/consciousness/D05 --dimension 5
refused_output nv/proto/D05 nv/consciousness/D05 --dimension 5
refused_output nv/D05 nv/consciousness/D05 --dimension 5
refused_output nv/consciousness/D0100 nv/consciousness/D100 --dimension 100
refused_output nv/consciousness/foo nv/proto/foo --proto
expect_fail "the exact message" "^layerfs: output 'nv/consciousness/D5' does not match --dimension 5: expected 'nv/consciousness/D05'\$" \
    "$layerfs" pack --dimension 5 in nv/consciousness/D5
expect_fail "another dimension's directory is named" "^layerfs: output 'nv/consciousness/D15' does not match --dimension 5 \('D15' is dimension 15\): expected 'nv/consciousness/D05'\$" \
    "$layerfs" pack --dimension 5 in nv/consciousness/D15
expect_fail "a proto NAME outside the rules" "^layerfs: output 'nv/proto/.draft' does not match --proto: '.draft' is not a proto name" \
    "$layerfs" pack --proto in nv/proto/.draft
expect_fail "a proto NAME of 65 characters" "is not a proto name \(1 to 64 of" "$layerfs" pack --proto in "nv/proto/$(printf 'x%.0s' {1..65})"
expect_fail "a symlink as output" "^layerfs: output 'nv/consciousness/D20' is a symbolic link" \
    bash -c "ln -s D01 nv/consciousness/D20 && '$layerfs' pack --dimension 20 in nv/consciousness/D20"
rm -f nv/consciousness/D20
expect_fail "a file as output" "^layerfs: output 'nv/consciousness/D21' exists and is a regular file, not a directory" \
    bash -c "touch nv/consciousness/D21 && '$layerfs' pack --dimension 21 in nv/consciousness/D21"
rm -f nv/consciousness/D21
expect "accepts D05 for 5" "$layerfs" pack --dimension 5 in nv/consciousness/D05
expect "accepts D100 for 100" "$layerfs" pack --dimension 100 in nv/consciousness/D100/
expect "accepts proto/draft" "$layerfs" pack --proto in nv/proto/draft
expect "accepts proto/D05 for --proto" "$layerfs" pack --proto in nv/proto/D05
expect_eq "verify sees every dimension pack wrote" "nv: 17 dimensions (11 empty), 10 layers" \
    "$("$layerfs" verify nv | sed 's/, 0.0 MB.*//')"
expect "relative to consciousness/" bash -c "cd nv/consciousness && '$layerfs' pack --dimension 6 ../../in D06"
expect_fail "relative to consciousness/, the wrong spelling" "^layerfs: output 'D6' does not match --dimension 6: expected 'D06'\$" \
    bash -c "cd nv/consciousness && '$layerfs' pack --dimension 6 ../../in D6"
expect_fail "relative to proto/" "^layerfs: output 'D06' does not match --dimension 6: expected '../consciousness/D06'\$" \
    bash -c "cd nv/proto && '$layerfs' pack --dimension 6 ../../in D06"
# A missing parent is created (a new volume), and said; a file in the way is named.
expect_eq "a new volume's consciousness/ is created, and said" \
    "layerfs: created directory 'fresh'|layerfs: created directory 'fresh/consciousness'|fresh/consciousness/D07: 2 layers" \
    "$("$layerfs" pack --dimension 7 in fresh/consciousness/D07 2>&1 | sed 's/, [0-9]* bytes.*//' | paste -sd'|')"
expect "the new volume verifies" "$layerfs" verify fresh
expect_fail "a file where the parent should be" "^layerfs: output 'nv/README.md/consciousness/D07' cannot be created: 'nv/README.md' is a regular file, not a directory" \
    "$layerfs" pack --dimension 7 in nv/README.md/consciousness/D07

# ---- the input: every entry is packed, listed as skipped with its reason, or refused
layer_ids() { python3 -c 'import json,sys; print(" ".join(str(l["layer_id"]) for l in json.load(open(sys.argv[1]))["layers"]))' "$1/index.json"; }
layer_checksum() { python3 -c 'import json,sys; print([l["checksum"] for l in json.load(open(sys.argv[1]))["layers"] if l["layer_id"] == int(sys.argv[2])][0])' "$1/index.json" "$2"; }
mkdir mixed; printf 'a\n' > mixed/layer-003; printf 'b\n' > mixed/layer-007; printf 'c\n' > mixed/layer-1000
expect "layer-NNN names give the ids" "$layerfs" pack --dimension 8 mixed nv/consciousness/D08
expect_eq "ids 3 7 1000" "3 7 1000" "$(layer_ids nv/consciousness/D08)"
printf 'n\n' > mixed/notes.txt
expect_fail "one file not named layer-NNN is refused, not renumbered" \
    "^layerfs: input 'mixed': 3 files are named layer-NNN and 1 is not \('notes.txt'\), .* or give --renumber" \
    "$layerfs" pack --dimension 8 mixed nv/consciousness/D08
expect_eq "the refused pack left D08 as it was" "3 7 1000" "$(layer_ids nv/consciousness/D08)"
expect "--renumber numbers every file in name order" "$layerfs" pack --renumber --dimension 8 mixed nv/consciousness/D08
expect_eq "--renumber: ids 1 2 3 4" "1 2 3 4" "$(layer_ids nv/consciousness/D08)"
expect_eq "--renumber: layer-007 became id 2, and -v says so" "'mixed/layer-007' -> layer 2" \
    "$("$layerfs" pack -v --renumber --dimension 8 mixed nv/consciousness/D08 | grep layer-007)"
mkdir plain; printf 'x\n' > plain/b.txt; printf 'y\n' > plain/a.txt
expect_eq "no layer-NNN names: numbered in name order, -v lists each file" "'plain/a.txt' -> layer 1|'plain/b.txt' -> layer 2" \
    "$("$layerfs" pack --verbose --dimension 9 plain nv/consciousness/D09 | grep -- '->' | paste -sd'|')"

mkdir odd; printf 'one\n' > odd/layer-001; printf 'two\n' > odd/layer-002
printf 'h\n' > odd/.hidden; mkdir odd/.git odd/sub; mkfifo odd/fifo
out=$("$layerfs" pack --dimension 10 odd nv/consciousness/D10 2>&1)
expect_eq "skipped: a hidden file" "layerfs: skipped 'odd/.hidden': hidden file" "$(grep -F "'odd/.hidden'" <<<"$out")"
expect_eq "skipped: a hidden directory" "layerfs: skipped 'odd/.git': hidden directory" "$(grep -F "'odd/.git'" <<<"$out")"
expect_eq "skipped: a directory" "layerfs: skipped 'odd/sub': directory" "$(grep -F "'odd/sub'" <<<"$out")"
expect_eq "skipped: a FIFO (mkfifo), without blocking on it" "layerfs: skipped 'odd/fifo': not a regular file (FIFO)" "$(grep -F "'odd/fifo'" <<<"$out")"
expect_eq "the two files packed" "1 2" "$(layer_ids nv/consciousness/D10)"

# Symlinks: refused without --follow-symlinks; followed with it only to files inside the input.
ln -s /etc/hostname odd/layer-003
expect_fail "a symlink to /etc/hostname is refused" "^layerfs: 'odd/layer-003': symbolic link \(to '/etc/hostname'\) refused: .*--follow-symlinks" \
    "$layerfs" pack --dimension 10 odd nv/consciousness/D10
expect_fail "... also with --follow-symlinks" "^layerfs: 'odd/layer-003': symbolic link leads to '/etc/hostname', outside the input directory '$work/odd'" \
    "$layerfs" pack --follow-symlinks --dimension 10 odd nv/consciousness/D10
rm odd/layer-003; ln -s ../in/layer-001 odd/layer-003
expect_fail "a relative link out of the input is refused with --follow-symlinks" "leads to '$work/in/layer-001', outside the input directory" \
    "$layerfs" pack --follow-symlinks --dimension 10 odd nv/consciousness/D10
rm odd/layer-003; printf 'deep\n' > odd/sub/real; ln -s sub/real odd/layer-003
expect_fail "a link inside the input is refused without --follow-symlinks" "^layerfs: 'odd/layer-003': symbolic link \(to 'sub/real'\) refused" \
    "$layerfs" pack --dimension 10 odd nv/consciousness/D10
expect_eq "the refused packs left D10 as it was" "1 2" "$(layer_ids nv/consciousness/D10)"
expect_eq "with --follow-symlinks it is packed as the file it points to" "'odd/layer-003' -> layer 3 (via '$work/odd/sub/real')" \
    "$("$layerfs" pack -v --follow-symlinks --dimension 10 odd nv/consciousness/D10 2>/dev/null | grep layer-003)"
expect_eq "the layer holds the target's bytes" "sha256:$(sha256sum < odd/sub/real | cut -d' ' -f1)" "$(layer_checksum nv/consciousness/D10 3)"
ln -s nowhere odd/layer-004
expect_eq "a dangling symlink is skipped, and said" "layerfs: skipped 'odd/layer-004': dangling symlink (to 'nowhere')" \
    "$("$layerfs" pack --follow-symlinks --dimension 10 odd nv/consciousness/D10 2>&1 >/dev/null | grep -F "'odd/layer-004'")"
ln -s sub odd/layer-005
expect_eq "a symlink to a directory is skipped, and said" "layerfs: skipped 'odd/layer-005': symlink to a directory" \
    "$("$layerfs" pack --follow-symlinks --dimension 10 odd nv/consciousness/D10 2>&1 >/dev/null | grep -F "'odd/layer-005'")"
expect "the volume verifies" "$layerfs" verify nv

# The input directory itself: named as the case is.
expect_fail "a missing input" "^layerfs: input 'nosuch' does not exist\$" "$layerfs" pack --dimension 11 nosuch nv/consciousness/D11
expect_fail "a file as input" "^layerfs: input 'in/layer-001' is not a directory \(it is a regular file\)\$" \
    "$layerfs" pack --dimension 11 in/layer-001 nv/consciousness/D11
mkdir locked; printf 'x\n' > locked/layer-001; chmod 000 locked
if [ "$(id -u)" -ne 0 ]; then
    expect_fail "an unreadable input" "^layerfs: input 'locked': permission denied\$" "$layerfs" pack --dimension 11 locked nv/consciousness/D11
elif command -v setpriv >/dev/null && chmod 755 "$work" && setpriv --reuid=65534 --regid=65534 --clear-groups "$layerfs" --version >/dev/null 2>&1; then
    # root reads any directory: the check runs as nobody.
    expect_fail "an unreadable input (as nobody)" "^layerfs: input 'locked': permission denied\$" \
        setpriv --reuid=65534 --regid=65534 --clear-groups "$layerfs" pack --dimension 11 locked "$work/nv/consciousness/D11"
else
    skip "an unreadable input" "running as root, and cannot run layerfs as nobody here"
fi
chmod 755 locked

# ---- emptying a dimension, or cutting it below half its layers, needs --force
mkdir three empty one two; for i in 1 2 3; do printf '%s\n' $i > three/layer-00$i; done
printf '1\n' > one/layer-001; printf '1\n' > two/layer-001; printf '2\n' > two/layer-002
expect "a 3-layer D12" "$layerfs" pack --dimension 12 three nv/consciousness/D12
expect_fail "an empty input over 3 layers is refused" \
    "^layerfs: output 'nv/consciousness/D12' has 3 layers and input 'empty' has 0: replacing a dimension by an empty one needs --force\$" \
    "$layerfs" pack --dimension 12 empty nv/consciousness/D12
expect_fail "1 layer over 3 is refused" \
    "^layerfs: output 'nv/consciousness/D12' has 3 layers and input 'one' has 1: replacing a dimension by fewer than half its layers needs --force\$" \
    "$layerfs" pack --dimension 12 one nv/consciousness/D12
expect_eq "the refused packs left D12 as it was" "1 2 3" "$(layer_ids nv/consciousness/D12)"
mkdir -p only-dirs/sub only-dirs/.hidden-dir
expect_eq "skipped entries do not count, and are listed before the refusal" \
    "layerfs: skipped 'only-dirs/.hidden-dir': hidden directory|layerfs: skipped 'only-dirs/sub': directory|layerfs: output 'nv/consciousness/D12' has 3 layers and input 'only-dirs' has 0: replacing a dimension by an empty one needs --force" \
    "$("$layerfs" pack --dimension 12 only-dirs/ nv/consciousness/D12 2>&1 | paste -sd'|')"
expect "2 layers over 3 is fine (not fewer than half)" "$layerfs" pack --dimension 12 two nv/consciousness/D12
expect "a 3-layer D12 again" "$layerfs" pack --dimension 12 three nv/consciousness/D12
expect_eq "--force empties it" "nv/consciousness/D12: 0 layers, 4096 bytes" \
    "$("$layerfs" pack --force --dimension 12 empty nv/consciousness/D12 | sed 's/, sha256.*//')"
expect "an empty input over an empty dimension needs no --force" "$layerfs" pack --dimension 12 empty nv/consciousness/D12
expect "one layer into an empty dimension" "$layerfs" pack --dimension 12 one nv/consciousness/D12
expect_fail "removing a 1-layer dimension's only layer needs --force" "has 1 layer and input 'empty' has 0" \
    "$layerfs" pack --dimension 12 empty nv/consciousness/D12
expect "the volume verifies" "$layerfs" verify nv

# ---- pack's own refusals are `layerfs: ...` lines (exit 1), never the top command's usage
no_root_usage() { # NAME ARGS...: refused with a layerfs: line, exit 1, no "Usage: layerfs <subcommand>"
    local name=$1; shift
    local out rc=0
    out=$("$layerfs" pack "$@" 2>&1) || rc=$?
    if [ $rc -ne 1 ] || ! grep -q '^layerfs: ' <<<"$out" || grep -q 'Usage: layerfs <subcommand>' <<<"$out"; then
        fail "$name" "exit $rc: ${out:0:300}"
    else ok "$name"; fi
}
no_root_usage "neither --dimension nor --proto" in nv/consciousness/D05
no_root_usage "both --dimension and --proto" --dimension 5 --proto in nv/consciousness/D05
no_root_usage "--dimension 0" --dimension 0 in nv/consciousness/D00
no_root_usage "an output that does not match" --dimension 5 in nv/consciousness/D5
no_root_usage "a proto name outside the rules" --proto in nv/proto/.x
expect_fail "what ArgumentParser cannot parse gets pack's usage" "Usage: layerfs pack " "$layerfs" pack --dimension abc in nv/consciousness/D05

# ---- --help: examples, and text wrapped by ArgumentParser (no hard breaks mid-paragraph)
for cols in 80 120; do
    help=$(COLUMNS=$cols "$layerfs" pack --help)
    expect_eq "--help at $cols columns: no line longer" "" "$(awk -v c=$cols 'length($0) > c' <<<"$help")"
    # Before the examples, every line of a paragraph but its last fills the width (>= 2/3 of it).
    expect_eq "--help at $cols columns: paragraphs wrap only at the width" "" \
        "$(awk -v c=$cols '/^Examples:/ { exit } NR > 1 { if ($0 == "") { prev = ""; next } if (prev != "" && length(prev) < c * 2 / 3) print "short: " prev; prev = $0 }' <<<"$help")"
done
help=$(COLUMNS=80 "$layerfs" pack --help)
expect "--help has examples" grep -qx "Examples:" <<<"$help"
for example in "layerfs pack --dimension 5 layers/ data/mmap/consciousness/D05" "layerfs pack --proto drafts/ data/mmap/proto/draft" \
    "layerfs pack --follow-symlinks --dimension 7 in/ vol/consciousness/D07" "layerfs pack --dimension 3 copy/ data/mmap/consciousness/D03"; do
    expect "--help example, on one line: $example" grep -qxF "  $example" <<<"$help"
done
expect "--help: usage is pack's own, on lines that fit" grep -qx "USAGE: layerfs pack --dimension <n> \[<options>\] <input-dir> <output-dir>" <<<"$help"
for flag in --follow-symlinks --renumber --force --verbose --max-region-size; do
    expect "--help documents $flag" grep -q -- "$flag" <<<"$help"
done

finish
