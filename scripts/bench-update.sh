#!/usr/bin/env bash
# Figures for `layerfs update`. Prints the machine and Markdown table rows; never fails on a
# timing (it fails only when an update itself fails).
#
#   scripts/bench-update.sh LAYERFS        (part of make bench)
#
# (a) one 4 KiB layer replaced in a 256 MiB dimension (64 layers of 4 MiB and one of 4 KiB),
#     median of ROUNDS `layerfs update`, against, in the same run:
#     - the work the format requires of any writer: copy the region (os.copy_file_range into
#       a new file beside it) and hash it (`openssl dgst -sha256`); target ≤ 1.5× this;
#     - the same plus fsync of the copy (what a writer also owes; shown, no target);
#     - `layerfs pack` of the full input into a dimension of the same size; target ≥ 5× faster.
#     Everything is in the page cache before each case.
# (b) UPDATES (default 1000) single-layer updates, one after the other from one process, to a
#     10 MiB dimension (40 layers of 256 KiB, one replaced by fresh bytes each time) under a
#     mount: updates per second (time inside `layerfs update`), and per update the time from
#     the command returning to the mount's `user.generation` on the dimension directory
#     naming the new region checksum (polled every 0.5 ms): median, p90 and max.
# Environment: BENCH_ROUNDS (default 5), BENCH_UPDATES (1000).
source "$(dirname "$0")/bench-common.sh"
updates=${BENCH_UPDATES:-1000}

ensure_packages openssl python3 attr

work=$(mktemp -d /tmp/layerfs-bench-update-XXXXXX)
m=$work/mnt
cleanup() {
    grep -q " $m " /proc/mounts && { umount "$m" 2>/dev/null || umount -l "$m"; }
    rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM


machine() {
    echo "## layerfs update benchmark"
    echo
    echo "- machine: $(nproc) cores, $(grep -m1 '^model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//'), $(free -g | awk '/^Mem:/ {print $2 " GiB RAM"}')"
    echo "- kernel: $(uname -r); filesystem of the volume: $(findmnt -n -o FSTYPE -T "$work" 2>/dev/null || echo unknown)"
    echo "- libfuse: $(dpkg-query -W -f='${Version}' libfuse3-3 2>/dev/null || echo unknown); $(openssl version 2>/dev/null)"
    echo "- layerfs: $("$layerfs" --version 2>/dev/null || echo unknown) ($(basename "$(dirname "$layerfs")") build, git $(git -C "$here/.." rev-parse --short HEAD 2>/dev/null || echo unknown))"
    echo "- date: $(date -u +%Y-%m-%dT%H:%M:%SZ)"
    echo "- load average (1, 5, 15 min) at the end: $(cut -d' ' -f1-3 /proc/loadavg); medians of $rounds runs"
    echo
}

time_arg=2024-06-01T00:00:00Z
v=$work/vol
"$layerfs" init "$v" >/dev/null

# ---- (a) one 4 KiB layer of a 256 MiB dimension
echo "preparing: 64 x 4 MiB + 1 x 4 KiB of random layers" >&2
in=$work/in; mkdir -p "$in"
for i in $(seq 1 64); do openssl rand -out "$in/$(printf 'layer-%03d' "$i")" $((4 << 20)); done
openssl rand -out "$in/layer-065" 4096
openssl rand -out "$work/small-1" 4096
openssl rand -out "$work/small-2" 4096
dim=$v/consciousness/D01
"$layerfs" pack --dimension 1 --time "$time_arg" "$in" "$dim" >/dev/null
"$layerfs" pack --dimension 2 --time "$time_arg" "$in" "$v/consciousness/D02" >/dev/null
region_mb=$(calc "$(stat -c %s "$dim/region.mmap") / 1048576" "%.0f")

update_failed=0
t_update=()
t_ref=()
t_ref_sync=()
t_pack=()
copy_py='import os, sys
src, dst, sync = sys.argv[1], sys.argv[2], sys.argv[3] == "1"
fi = os.open(src, os.O_RDONLY); fo = os.open(dst, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
n = os.fstat(fi).st_size
while n > 0:
    c = os.copy_file_range(fi, fo, n)
    if c == 0: break
    n -= c
if sync: os.fsync(fo)
os.close(fi); os.close(fo)'
reference() { # SYNC: copy the region beside it, hash the copy, remove it
    python3 -c "$copy_py" "$dim/region.mmap" "$v/consciousness/.bench-copy" "$1" && openssl dgst -sha256 "$v/consciousness/.bench-copy" >/dev/null
    local rc=$?
    rm -f "$v/consciousness/.bench-copy"
    return $rc
}
warm() { cat "$dim/region.mmap" "$dim/index.json" "$in"/* >/dev/null; }
echo "timing: update, copy+hash, copy+fsync+hash, pack; $rounds rounds" >&2
for ((r = 0; r < rounds; r++)); do
    warm; sync
    t0=$(now_us); "$layerfs" update "$dim" --put "65=$work/small-$((r % 2 + 1))" >/dev/null || update_failed=$((update_failed + 1)); t_update+=("$(seconds_since "$t0")")
    warm; sync
    t0=$(now_us); reference 0; t_ref+=("$(seconds_since "$t0")")
    warm; sync
    t0=$(now_us); reference 1; t_ref_sync+=("$(seconds_since "$t0")")
    warm; sync
    t0=$(now_us); "$layerfs" pack --dimension 2 --time "$time_arg" "$in" "$v/consciousness/D02" >/dev/null; t_pack+=("$(seconds_since "$t0")")
done
m_update=$(printf '%s\n' "${t_update[@]}" | median)
m_ref=$(printf '%s\n' "${t_ref[@]}" | median)
m_ref_sync=$(printf '%s\n' "${t_ref_sync[@]}" | median)
m_pack=$(printf '%s\n' "${t_pack[@]}" | median)
verify_a=$("$layerfs" verify "$v" 2>&1 | tail -1 | sed "s|$work/||")
rm -rf "$in" "$v/consciousness/D02"

# ---- (b) 1000 single-layer updates of a 10 MiB dimension under a mount
echo "preparing: a 10 MiB dimension (40 x 256 KiB) and a mount" >&2
in=$work/in10; mkdir -p "$in"
for i in $(seq 1 40); do openssl rand -out "$in/$(printf 'layer-%03d' "$i")" $((256 << 10)); done
dim10=$v/consciousness/D03
"$layerfs" pack --dimension 3 --time "$time_arg" "$in" "$dim10" >/dev/null
mkdir -p "$m"
"$layerfs" mount "$v" "$m" 2>/dev/null
echo "timing: $updates updates under the mount" >&2
live=$(python3 - "$layerfs" "$dim10" "$m/D03" "$updates" "$work" <<'PY'
import os, random, re, statistics, subprocess, sys, time
layerfs, dim, mnt, n, work = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4]), sys.argv[5]
random.seed(1)
inside, visible, failed, late = 0.0, [], 0, 0
path = os.path.join(work, "next-layer")
for g in range(n):
    with open(path, "wb") as f:
        f.write(os.urandom(256 << 10))
    layer = random.randint(1, 40)
    t0 = time.monotonic()
    p = subprocess.run([layerfs, "update", dim, "--put", "%d=%s" % (layer, path)], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    t1 = time.monotonic()
    inside += t1 - t0
    sums = re.findall(r"sha256:[0-9a-f]{64}", p.stdout.decode().strip().split("\n")[-1])
    if p.returncode != 0 or not sums:
        failed += 1
        continue
    want = sums[-1].encode()
    while True:
        try:
            if os.getxattr(mnt, "user.generation") == want:
                break
        except OSError:
            pass
        if time.monotonic() - t1 > 10:
            late += 1
            break
        time.sleep(0.0005)
    visible.append((time.monotonic() - t1) * 1000)
v = sorted(visible) or [float("nan")]
print("%d %.3f %.1f %.1f %.1f %d %d" % (n, inside, statistics.median(v), v[int(0.9 * (len(v) - 1))], v[-1], failed, late))
PY
)
read -r n_done inside_s vis_median vis_p90 vis_max live_failed live_late <<<"$live"
"$layerfs" unmount "$m" 2>/dev/null
verify_b=$("$layerfs" verify "$dim10" 2>&1 | tail -1 | sed "s|$work/||")

# ---- report
machine
verdict() { # VALUE TARGET le|ge
    case $1 in n/a | nan | "") echo "n/a" ;;
    *) awk -v x="$1" -v t="$2" -v op="$3" 'BEGIN { m = (op == "le") ? (x + 0 <= t + 0) : (x + 0 >= t + 0); print (m ? "**met**" : "**missed**") }' ;;
    esac
}
ratio_ref=$(calc "$m_update / $m_ref" "%.2f")
ratio_pack=$(calc "$m_pack / $m_update" "%.1f")
echo "| measure | figure | reference | ratio | target |"
echo "|---|---|---|---|---|"
echo "| update: one 4 KiB layer of a $region_mb MiB dimension (65 layers), median of $rounds | $(calc "$m_update * 1000" "%.0f") ms | copy_file_range of the region + openssl dgst -sha256 of it: $(calc "$m_ref * 1000" "%.0f") ms | $ratio_ref× | ≤ 1.5×: $(verdict "$ratio_ref" 1.5 le) |"
echo "| the same reference with fsync of the copy | | $(calc "$m_ref_sync * 1000" "%.0f") ms | $(calc "$m_update / $m_ref_sync" "%.2f")× | — |"
echo "| pack of the full input (same $region_mb MiB), median of $rounds | $(calc "$m_pack * 1000" "%.0f") ms | update: $(calc "$m_update * 1000" "%.0f") ms | update $ratio_pack× faster | ≥ 5× faster: $(verdict "$ratio_pack" 5 ge) |"
echo "| $n_done single-layer updates of a 10 MiB dimension (40 × 256 KiB), one process | $(calc "$n_done / $inside_s" "%.1f") updates/s ($(calc "$inside_s * 1000 / $n_done" "%.1f") ms each) | | | — |"
echo "| ... update returned → mount's user.generation shows it | median $vis_median ms, p90 $vis_p90 ms, max $vis_max ms | | | — |"
echo
echo "- (a) the region checksum covers every byte after the header, so any writer of a new generation hashes the whole region: update and pack share that floor (the copy+hash reference), and pack's lead over it bounds how much faster than pack an update can be"
echo "- (a) every update succeeded: $([ "$update_failed" -eq 0 ] && echo yes || echo "no, $update_failed failed"); verify afterwards: $verify_a"
echo "- (b) failed updates: $live_failed; not visible within 10 s: $live_late; verify afterwards: $verify_b"
[ "$update_failed" -eq 0 ] && [ "${live_failed:-1}" -eq 0 ]
