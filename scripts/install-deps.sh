#!/usr/bin/env bash
# Installs the Debian packages layerfs needs that this machine lacks; does nothing when all
# are present. Usage: scripts/install-deps.sh [extra packages...]
set -euo pipefail
needed=(libfuse3-dev fuse3 attr rsync pkg-config "$@")
missing=()
for p in "${needed[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0
echo "installing: ${missing[*]}"
sudo=""
[ "$(id -u)" -eq 0 ] || sudo="sudo"
$sudo apt-get update -qq
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${missing[@]}" >/dev/null
