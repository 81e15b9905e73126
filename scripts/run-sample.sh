#!/usr/bin/env bash
# `make run`: create the sample volume under BASE if absent, then show it.
# Usage: scripts/run-sample.sh LAYERFS BASE MOUNTPOINT
set -euo pipefail
layerfs=$1 base=$2 mnt=$3
if [ ! -f "$base/consciousness/D01/index.json" ]; then
    "$layerfs" init --sample "$base"
fi
echo "== layerfs info $base"
"$layerfs" info "$base"
echo "== layerfs verify $base"
"$layerfs" verify "$base"
