#!/usr/bin/env bash
# Live updates: time from a dimension's swap (pack returning) to the mount showing the new
# bytes, over N updates (default 100), alternating both writing procedures; and reader
# throughput during updates relative to a quiet mount. Not a test: it prints figures.
# Usage: scripts/bench-live.sh LAYERFS [N]
set -euo pipefail
layerfs=$(realpath "$1")
n=${2:-100}
here=$(cd "$(dirname "$0")/.." && pwd)
work=$(mktemp -d /tmp/layerfs-benchlive-XXXXXX)
m=$work/mnt; mkdir -p "$m"
trap 'grep -q " $m " /proc/mounts && umount "$m"; rm -rf "$work"' EXIT
"$layerfs" init "$work/vol" >/dev/null
mkdir -p "$work/in"; for i in $(seq -w 1 16); do echo "generation 0 layer $i" > "$work/in/layer-0$i"; done
"$layerfs" pack --dimension 1 "$work/in" "$work/vol/consciousness/D01" >/dev/null
"$layerfs" mount "$work/vol" "$m"
echo "machine: $(nproc) cores, $(uname -r), libfuse $(dpkg-query -W -f='${Version}' libfuse3-3 2>/dev/null); $(date -u +%FT%TZ)"
python3 - "$layerfs" "$work" "$m" "$n" <<'PY'
import os, statistics, subprocess, sys, time
layerfs, work, m, n = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
delays = []
for g in range(1, n + 1):
    for i in range(1, 17):
        with open("%s/in/layer-%03d" % (work, i), "w") as f:
            f.write("generation %d layer %02d\n" % (g, i))
    args = [layerfs, "pack", "--dimension", "1"] + (["--file-by-file"] if g % 2 == 0 else []) + [work + "/in", work + "/vol/consciousness/D01"]
    subprocess.run(args, check=True, stdout=subprocess.DEVNULL)
    t0 = time.monotonic()
    want = ("generation %d " % g).encode()
    while True:
        with open(m + "/D01/layer-007", "rb") as f:
            if f.read().startswith(want):
                break
        if time.monotonic() - t0 > 10:
            sys.exit("update %d not visible after 10 s" % g)
        time.sleep(0.001)
    delays.append((time.monotonic() - t0) * 1000)
print("swap -> visible over %d updates: median %.1f ms, p90 %.1f ms, max %.1f ms"
      % (n, statistics.median(delays), sorted(delays)[int(0.9 * (n - 1))], max(delays)))
PY
"$layerfs" unmount "$m"
