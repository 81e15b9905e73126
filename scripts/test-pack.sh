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

finish
