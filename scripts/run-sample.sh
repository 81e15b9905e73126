#!/usr/bin/env bash
# `make run`: create the sample volume under BASE if absent, mount it on MOUNTPOINT, show it.
# Running it again remounts (so a rebuilt layerfs serves). Unmount: make unmount
# Usage: scripts/run-sample.sh LAYERFS BASE MOUNTPOINT
set -euo pipefail
layerfs=$1 base=$2 mnt=$3
if [ ! -f "$base/consciousness/D01/index.json" ]; then
    "$layerfs" init --sample "$base"
fi
echo "== layerfs verify $base"
"$layerfs" verify "$base"
echo "== layerfs info $base"
"$layerfs" info "$base"
mkdir -p "$mnt"
if grep -q " $(realpath "$mnt") fuse" /proc/mounts; then "$layerfs" unmount "$mnt"; fi
if [ ! -c /dev/fuse ]; then
    echo "(no /dev/fuse on this machine: the volume cannot be mounted here)"
    exit 0
fi
echo "== layerfs mount $base $mnt"
"$layerfs" mount "$base" "$mnt"
echo "== ls $mnt"; ls "$mnt"
echo "== ls -l $mnt/D01"; ls -l "$mnt/D01"
echo "== cat $mnt/D01/layer-001"; cat "$mnt/D01/layer-001"
echo "== getfattr -d $mnt/D01/layer-001"; getfattr --absolute-names -d "$mnt/D01/layer-001"
echo "== getfattr -d $mnt/D01"; getfattr --absolute-names -d "$mnt/D01"
echo "Mounted on $mnt; unmount with: make unmount MNT=$mnt (or $layerfs unmount $mnt)"
