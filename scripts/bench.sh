#!/usr/bin/env bash
# The side-by-side benchmark: the same bytes read three ways in one run,
#   direct         the layer files on the local disk, read straight (the page-cache ceiling),
#   layerfs        a layerfs mount of a volume packed from those files,
#   squashfuse_ll  a libfuse 3 low-level filesystem over an uncompressed squashfs image of
#                  those files (mksquashfs DIR IMG -noI -noD -noF -noX),
# printed as a Markdown table of medians with each case's ratio to the direct read.
#
#   scripts/bench.sh LAYERFS          (make bench)
#
# Every case runs ROUNDS times (default 5). Before every case group the sources are warmed
# into the page cache, and every group gets fresh mounts, so "first read" means a cold FUSE
# cache over a warm source. Needs root and /dev/fuse; installs squashfs-tools, squashfuse,
# fio, attr, gcc when absent; unmounts everything it mounted. Never fails on a timing.
# Environment: BENCH_ROUNDS (5), BENCH_KEEP=1 keeps the work directory, BENCH_NO_FIO=1 uses
# scripts/bench_randread.c for the random reads even when fio is installed.
source "$(dirname "$0")/bench-common.sh"
log() { echo "bench: $*" >&2; }

# ---- packages and prerequisites
ensure_packages squashfs-tools squashfuse fio attr gcc libc6-dev python3 openssl fuse3 procps

# For require_fuse only: the fail() defined below replaces the test harness's.
source "$here/../Tests/shell/lib.sh"
require_fuse "the benchmark's FUSE mounts"
if [ "$(id -u)" -ne 0 ]; then
    log "warning: not root: readahead cannot be raised and mounts may fail"
fi
have_fio=1; command -v fio >/dev/null || have_fio=0
[ "${BENCH_NO_FIO:-0}" = 1 ] && have_fio=0
have_sq=1; { command -v squashfuse_ll && command -v mksquashfs; } >/dev/null || have_sq=0

work=$(mktemp -d /tmp/layerfs-bench-XXXXXX)
mnt_l=$work/mnt-layerfs
mnt_s=$work/mnt-squashfuse
mkdir -p "$mnt_l" "$mnt_s" "$work/res"

is_mounted() { grep -q " $1 " /proc/mounts; }
cleanup() {
    local m keep=0
    for m in "$mnt_l" "$mnt_s"; do
        if is_mounted "$m"; then
            fusermount3 -u "$m" 2>/dev/null || umount "$m" 2>/dev/null || umount -l "$m" 2>/dev/null
        fi
        is_mounted "$m" && { keep=1; echo "bench: could not unmount $m" >&2; }
    done
    if [ "$keep" -eq 0 ] && [ "${BENCH_KEEP:-0}" != 1 ]; then rm -rf "$work"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# ---- data set
# main:  D01/layer-001 (256 MiB), D02/layer-001..1000 (4 KiB each),
#        D03/layer-001..10000 (1 KiB each, with user.checksum/frequency/keywords attributes)
# 100k:  D01/layer-001..100000 (100 bytes each, with frequency/keywords)
# empty: a volume (or image) with no layers, for the memory baseline
stamp=2024-06-01T00:00:00Z
src=$work/src; src100k=$work/src100k
vol=$work/vol; vol100k=$work/vol100k; volempty=$work/volempty
img=$work/main.sqfs; img100k=$work/100k.sqfs; imgempty=$work/empty.sqfs
gen() { python3 "$here/bench_volume.py" "$@"; }

t_setup=${EPOCHREALTIME/./}
log "generating the data set in $work"
mkdir -p "$src/D01"
openssl rand -out "$src/D01/layer-001" $((256 << 20))
gen files "$src/D02" 1000 4096
gen files "$src/D03" 10000 1024 --meta --checksum-xattr
gen files "$src100k/D01" 100000 100 --meta
mkdir -p "$work/emptydir"

log "packing the layerfs volumes"
"$layerfs" init "$vol" >/dev/null && "$layerfs" init "$vol100k" >/dev/null && "$layerfs" init "$volempty" >/dev/null || {
    echo "layerfs init failed" >&2; exit 1; }
for d in 1 2 3; do
    "$layerfs" pack --dimension $d --time $stamp "$src/D0$d" "$vol/consciousness/D0$d" >/dev/null || {
        echo "layerfs pack of D0$d failed" >&2; exit 1; }
done
"$layerfs" pack --dimension 1 --time $stamp "$src100k/D01" "$vol100k/consciousness/D01" >/dev/null || {
    echo "layerfs pack of the 100 000 layers failed" >&2; exit 1; }

if [ $have_sq = 1 ]; then
    log "building the squashfs images"
    # -no-duplicates: same image layout for unique (random) files, without mksquashfs's
    # duplicate search, which takes minutes for 100 000 files of one size.
    sqopts=(-noI -noD -noF -noX -no-duplicates -no-progress -quiet)
    mksquashfs "$src" "$img" "${sqopts[@]}" >/dev/null &&
        mksquashfs "$src100k" "$img100k" "${sqopts[@]}" >/dev/null &&
        mksquashfs "$work/emptydir" "$imgempty" "${sqopts[@]}" >/dev/null || { log "mksquashfs failed"; have_sq=0; }
fi

log "compiling the latency probe and the random reader"
lat=$work/bench_latency; randread=$work/bench_randread
gcc -O2 -o "$lat" "$here/bench_latency.c" && gcc -O2 -o "$randread" "$here/bench_randread.c" || {
    echo "cannot compile scripts/bench_latency.c or scripts/bench_randread.c" >&2; exit 1; }
t_setup=$(( (${EPOCHREALTIME/./} - t_setup) / 1000000 ))

kinds=(direct layerfs)
[ $have_sq = 1 ] && kinds+=(squashfuse)

# ---- mounting
# set: main | 100k | empty.  Sets ROOT to where the set's DNN directories are.
daemon_pid() {
    case $1 in
        layerfs) pgrep -n -f -- "layerfs mount .*$mnt_l\$" ;;
        squashfuse) pgrep -n -f -- "squashfuse_ll .*$mnt_s\$" ;;
    esac
}
open_set() {
    local kind=$1 set=$2
    case $kind in
        direct)
            case $set in main) ROOT=$src ;; 100k) ROOT=$src100k ;; empty) ROOT=$work/emptydir ;; esac ;;
        layerfs)
            local v; case $set in main) v=$vol ;; 100k) v=$vol100k ;; empty) v=$volempty ;; esac
            "$layerfs" mount "$v" "$mnt_l" || { log "layerfs mount $v failed"; return 1; }
            ROOT=$mnt_l ;;
        squashfuse)
            local i; case $set in main) i=$img ;; 100k) i=$img100k ;; empty) i=$imgempty ;; esac
            squashfuse_ll "$i" "$mnt_s" || { log "squashfuse_ll $i failed"; return 1; }
            ROOT=$mnt_s ;;
    esac
}
close_set() {
    local kind=$1 m i
    case $kind in
        direct) return 0 ;;
        layerfs) m=$mnt_l; "$layerfs" unmount "$m" >/dev/null 2>&1 || fusermount3 -u "$m" 2>/dev/null ;;
        squashfuse) m=$mnt_s; fusermount3 -u "$m" 2>/dev/null ;;
    esac
    # The next mount's daemon must not be confused with this one (RSS is read by pid).
    for ((i = 0; i < 500; i++)); do
        if ! is_mounted "$m" && [ -z "$(daemon_pid "$kind")" ]; then return 0; fi
        sleep 0.01
    done
    is_mounted "$m" && { umount -l "$m" 2>/dev/null; log "warning: $m needed a lazy unmount"; }
    return 0
}

warm_main() {
    cat "$src/D01/layer-001" "$src"/D02/* "$vol"/consciousness/D0[123]/region.mmap \
        "$vol"/consciousness/D0[123]/index.json >/dev/null
    [ $have_sq = 1 ] && cat "$img" >/dev/null
    ls -l "$src/D03" >/dev/null
}
warm_100k() {
    cat "$vol100k/consciousness/D01/region.mmap" "$vol100k/consciousness/D01/index.json" >/dev/null
    [ $have_sq = 1 ] && cat "$img100k" "$imgempty" >/dev/null
    ls -l "$src100k/D01" >/dev/null
}

# ---- recording
# record CASE KIND VALUE: one sample in the case's display unit.
record() { echo "$3" >> "$work/res/$1.$2"; }
fail() { echo "$1 ($2): $3" >> "$work/res/errors"; }
# timed CASE KIND COMMAND...: runs it, records its wall time in ms (nothing if it failed).
timed() {
    local c=$1 k=$2; shift 2
    local t0=${EPOCHREALTIME/./} rc
    "$@" >/dev/null 2>"$work/res/stderr"; rc=$?
    local t1=${EPOCHREALTIME/./}
    if [ $rc -eq 0 ]; then
        record "$c" "$k" "$(awk -v d=$((t1 - t0)) 'BEGIN { printf "%.3f", d / 1000 }')"
    else
        fail "$c" "$k" "exit $rc: $(head -c 200 "$work/res/stderr" | tr '\n' ' ')"
    fi
    return $rc
}
rss_kb() { awk '/^VmRSS:/ { print $2 }' "/proc/$1/status" 2>/dev/null; }

# ---- the cases
group_sequential() {   # 256 MiB layer: first read, re-read
    local k=$1 f
    open_set "$k" main || { fail seq1 "$k" "mount failed"; return; }
    f=$ROOT/D01/layer-001
    if [ "$r" -eq 1 ] && [ "$k" != direct ]; then
        echo "- $k read_ahead_kb on its mount: $(cat "/sys/class/bdi/$(mountpoint -d "$ROOT")/read_ahead_kb" 2>/dev/null || echo '?')" >> "$work/res/notes"
    fi
    timed seq1 "$k" dd if="$f" of=/dev/null bs=1M
    timed seq2 "$k" dd if="$f" of=/dev/null bs=1M
    close_set "$k"
}
group_small() {        # cat of the 1000 x 4 KiB layers, twice
    local k=$1
    open_set "$k" main || { fail cat1 "$k" "mount failed"; return; }
    timed cat1 "$k" sh -c 'cat "$1"/D02/* > /dev/null' sh "$ROOT"
    timed cat2 "$k" sh -c 'cat "$1"/D02/* > /dev/null' sh "$ROOT"
    close_set "$k"
}
group_listing() {      # ls -l and getfattr over the 10 000-layer dimension
    local k=$1
    open_set "$k" main || { fail lsl "$k" "mount failed"; return; }
    timed lsl "$k" ls -l "$ROOT/D03"
    timed xattr "$k" sh -c 'getfattr --absolute-names -n user.checksum "$1"/D03/* > /dev/null' sh "$ROOT"
    close_set "$k"
}
group_latency() {      # open + read 4 KiB + close over D02: pass 1 cold, pass 3 cached
    local k=$1 out
    open_set "$k" main || { fail latcold50 "$k" "mount failed"; return; }
    if out=$("$lat" "$ROOT/D02" 1000 3 2>"$work/res/stderr"); then
        record latcold50 "$k" "$(echo "$out" | awk '$1 == 1 { print $2 }')"
        record latcold99 "$k" "$(echo "$out" | awk '$1 == 1 { print $3 }')"
        record latwarm50 "$k" "$(echo "$out" | awk '$1 == 3 { print $2 }')"
        record latwarm99 "$k" "$(echo "$out" | awk '$1 == 3 { print $3 }')"
    else
        fail latcold50 "$k" "$(head -c 200 "$work/res/stderr")"
    fi
    close_set "$k"
}
group_random() {       # random 4 KiB reads over the 256 MiB layer, fresh mount per run
    local k=$1 jobs c out iops
    for jobs in 1 4; do
        c=fio$jobs
        open_set "$k" main || { fail $c "$k" "mount failed"; continue; }
        if [ $have_fio = 1 ]; then
            if out=$(fio --name=randread --filename="$ROOT/D01/layer-001" --readonly --rw=randread --bs=4k \
                         --ioengine=psync --invalidate=0 --io_size=$((64 / jobs))M --numjobs=$jobs \
                         --group_reporting --randrepeat=1 --runtime=30 --output-format=json 2>"$work/res/stderr"); then
                iops=$(echo "$out" | python3 -c 'import json, sys
t = sys.stdin.read(); d = json.loads(t[t.index("{"):])
print("%.3f" % (d["jobs"][0]["read"]["iops"] / 1000))' 2>/dev/null)
                if [ -n "$iops" ]; then record $c "$k" "$iops"; else fail $c "$k" "unreadable fio output"; fi
            else
                fail $c "$k" "fio: $(head -c 200 "$work/res/stderr" | tr '\n' ' ')"
            fi
        else
            if iops=$("$randread" "$ROOT/D01/layer-001" $jobs $((16384 / jobs)) 2>"$work/res/stderr"); then
                record $c "$k" "$iops"
            else
                fail $c "$k" "bench_randread: $(head -c 200 "$work/res/stderr" | tr '\n' ' ')"
            fi
        fi
        close_set "$k"
    done
}
group_100k() {         # mount -> ls of the root -> ls of the dimension; memory per layer
    local k=$1 t0 t1 t2 t3 i pid rss_loaded rss_looked rss_empty
    t0=${EPOCHREALTIME/./}
    open_set "$k" 100k || { fail mount_root "$k" "mount failed"; return; }
    for ((i = 0; i < 10000; i++)); do
        { [ "$k" = direct ] || mountpoint -q "$ROOT"; } && ls "$ROOT" >/dev/null 2>&1 && break
        sleep 0.001
    done
    t1=${EPOCHREALTIME/./}
    ls "$ROOT/D01" >/dev/null
    t2=${EPOCHREALTIME/./}
    record mount_root "$k" "$(awk -v d=$((t1 - t0)) 'BEGIN { printf "%.3f", d / 1000 }')"
    record mount_dim "$k" "$(awk -v d=$((t2 - t0)) 'BEGIN { printf "%.3f", d / 1000 }')"
    [ "$k" = direct ] || { pid=$(daemon_pid "$k"); rss_loaded=$(rss_kb "$pid"); }
    timed lsl100k "$k" ls -l "$ROOT/D01"
    [ "$k" = direct ] || rss_looked=$(rss_kb "$pid")
    close_set "$k"
    [ "$k" = direct ] && return 0
    open_set "$k" empty || { fail mem "$k" "mount of the empty volume failed"; return; }
    ls "$ROOT" >/dev/null
    rss_empty=$(rss_kb "$(daemon_pid "$k")")
    close_set "$k"
    if [ -n "$rss_loaded" ] && [ -n "$rss_empty" ] && [ -n "$rss_looked" ]; then
        record mem "$k" "$(awk -v a="$rss_loaded" -v e="$rss_empty" 'BEGIN { printf "%.1f", (a - e) * 1024 / 100000 }')"
        record memlookup "$k" "$(awk -v a="$rss_looked" -v e="$rss_empty" 'BEGIN { printf "%.1f", (a - e) * 1024 / 100000 }')"
        [ "$r" -eq 1 ] && echo "- $k daemon VmRSS: empty volume $rss_empty kB; 100 000 layers listed $rss_loaded kB; after ls -l $rss_looked kB" >> "$work/res/notes"
    else
        fail mem "$k" "could not read the daemon's VmRSS"
    fi
}

# ---- the rounds
t_run=${EPOCHREALTIME/./}
load_before=$(cut -d' ' -f1-3 /proc/loadavg)
for ((r = 1; r <= rounds; r++)); do
    log "round $r of $rounds"
    for g in sequential small listing latency random; do
        warm_main
        for k in "${kinds[@]}"; do "group_$g" "$k"; done
    done
    warm_100k
    for k in "${kinds[@]}"; do group_100k "$k"; done
done
t_run=$(( (${EPOCHREALTIME/./} - t_run) / 1000000 ))

# ---- the table
median_of() {   # CASE KIND -> median or empty
    local f=$work/res/$1.$2
    [ -s "$f" ] || return 0
    sort -g "$f" | awk '{ a[NR] = $1 } END { if (NR % 2) print a[(NR + 1) / 2]; else print (a[NR / 2] + a[NR / 2 + 1]) / 2 }'
}
fmt() {         # VALUE UNIT
    [ -n "$1" ] || { echo "n/a"; return; }
    case $2 in
        ms) awk -v v="$1" 'BEGIN { printf (v < 10 ? "%.2f ms" : v < 100 ? "%.1f ms" : "%.0f ms"), v }' ;;
        us) awk -v v="$1" 'BEGIN { printf (v < 100 ? "%.1f µs" : "%.0f µs"), v }' ;;
        kiops) awk -v v="$1" 'BEGIN { printf "%.1f k IOPS", v }' ;;
        B) awk -v v="$1" 'BEGIN { printf "%.0f B", v }' ;;
    esac
}
ratio() {       # VALUE DIRECT MODE(time|rate)
    [ -n "$1" ] && [ -n "$2" ] || { echo "—"; return; }
    awk -v v="$1" -v d="$2" -v m="$3" 'BEGIN {
        if (m == "rate") { if (v <= 0) { print "—"; exit } x = d / v } else { if (d <= 0) { print "—"; exit } x = v / d }
        printf (x < 10 ? "%.2f×" : "%.0f×"), x }'
}
# row LABEL CASE UNIT MODE TARGET CHECK
#   MODE: time (ratio = value / direct), rate (ratio = direct / value, so > 1 is slower), abs
#   CHECK: awk condition on L (layerfs), D (direct), S (squashfuse_ll), R = layerfs ratio
row() {
    local label=$1 c=$2 unit=$3 mode=$4 target=$5 check=$6
    local d l s rl rs verdict=""
    d=$(median_of "$c" direct); l=$(median_of "$c" layerfs); s=$(median_of "$c" squashfuse)
    if [ "$mode" = abs ]; then
        rl="—"; rs="—"
    else
        rl=$(ratio "$l" "$d" "$mode"); rs=$(ratio "$s" "$d" "$mode")
    fi
    if [ -n "$check" ] && [ -n "$l" ]; then
        verdict=$(awk -v L="$l" -v D="${d:-0}" -v S="${s:-0}" -v HS="${s:+1}" -v M="$mode" 'BEGIN {
            R = (M == "rate") ? (L > 0 ? D / L : 1e9) : (D > 0 ? L / D : 1e9)
            print ('"$check"') ? "met" : "missed" }')
        target="$target: **$verdict**"
    fi
    local dcell; dcell=$(fmt "$d" "$unit"); [ "$mode" = abs ] && [ "$c" = mem -o "$c" = memlookup ] && dcell="—"
    echo "| $label | $dcell | $(fmt "$l" "$unit") | $( [ $have_sq = 1 ] && fmt "$s" "$unit" || echo "n/a") | $rl | $rs | ${target:-—} |"
}

echo "## layerfs benchmark: direct read vs layerfs vs squashfuse_ll"
echo
echo "- machine: $(nproc) cores, $(grep -m1 '^model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//'), $(free -g | awk '/^Mem:/ {print $2 " GiB RAM"}')"
echo "- kernel: $(uname -r)"
echo "- libfuse: $(dpkg-query -W -f='${Version}' libfuse3-3 2>/dev/null || echo unknown); squashfuse $(dpkg-query -W -f='${Version}' squashfuse 2>/dev/null || echo absent); fio $(fio --version 2>/dev/null | sed 's/^fio-//' || echo absent)"
echo "- layerfs: $("$layerfs" --version 2>/dev/null || echo unknown) ($(basename "$layerfs"), git $(git -C "$(dirname "$0")/.." rev-parse --short HEAD 2>/dev/null || echo unknown))"
echo "- date: $(date -u +%Y-%m-%dT%H:%M:%SZ)"
echo "- load average (1, 5, 15 min) before the rounds: $load_before; after: $(cut -d' ' -f1-3 /proc/loadavg) (anything else running on the machine shows up in the timings)"
echo "- medians of $rounds rounds; sources warmed into the page cache before every case group; fresh mounts for every group; setup ${t_setup} s, rounds ${t_run} s"
echo
echo "| case | direct | layerfs | squashfuse_ll | layerfs/direct | squashfuse/direct | target |"
echo "|---|---|---|---|---|---|---|"
row "256 MiB layer, first read (dd bs=1M)" seq1 ms time "≤ 5×, ≥ 2× faster than squashfuse_ll" 'R <= 5 && (HS != 1 || S >= 2 * L)'
row "256 MiB layer, re-read" seq2 ms time "≤ 1.5×" 'R <= 1.5'
row "cat 1000 × 4 KiB, first pass" cat1 ms time "≤ 3×" 'R <= 3'
row "cat 1000 × 4 KiB, second pass" cat2 ms time "≤ 1.3×" 'R <= 1.3'
row "ls -l of 10 000 layers" lsl ms time "≤ 3×" 'R <= 3'
row "getfattr -n user.checksum, 10 000 layers" xattr ms time "" ""
reader=$([ $have_fio = 1 ] && echo "fio psync" || echo "bench_randread")
row "random 4 KiB reads ($reader), 1 process" fio1 kiops rate "" ""
row "random 4 KiB reads ($reader), 4 processes" fio4 kiops rate "" ""
row "100 000 layers: mount → first ls of the root" mount_root ms time "≤ 200 ms" 'L <= 200'
row "100 000 layers: mount → complete ls of the dimension" mount_dim ms time "≤ 1 s" 'L <= 1000'
row "100 000 layers: ls -l of the dimension (after the ls)" lsl100k ms time "" ""
row "memory per layer, 100 000 listed (VmRSS − empty volume's) ÷ layers" mem B abs "≤ 150 B" 'L <= 150'
row "memory per layer after ls -l (every layer looked up)" memlookup B abs "" ""
row "open + read 4 KiB + close, p50, cached" latwarm50 us time "≤ 50 µs" 'L <= 50'
row "open + read 4 KiB + close, p99, cached" latwarm99 us time "" ""
row "open + read 4 KiB + close, p50, cold (fresh mount)" latcold50 us time "" ""
row "open + read 4 KiB + close, p99, cold (fresh mount)" latcold99 us time "≤ 1 ms" 'L <= 1000'
echo
echo "Ratios are the cost relative to the direct read (time ÷ direct time; for IOPS, direct IOPS ÷ IOPS): 1× is the page-cache ceiling, larger is slower."
echo "For the 100 000-layer rows the direct column is \`ls\` of the same tree on the local disk (no mount); the targets there are absolute."
echo "Random reads: $reader, 4 KiB, 64 MiB in all per run (16 384 reads, split between the processes) over the 256 MiB layer, on a fresh mount (so mostly FUSE cache misses), POSIX_FADV_RANDOM, no cache invalidation."
echo "Latency: scripts/bench_latency.c over the 1000 × 4 KiB layers; cold = the first pass on a fresh mount, cached = the third pass."
echo "squashfs images: mksquashfs -noI -noD -noF -noX -no-duplicates (uncompressed; -no-duplicates only skips the duplicate search)."
[ -s "$work/res/notes" ] && cat "$work/res/notes"
echo
echo "<details><summary>every sample, in round order</summary>"
echo
for f in "$work"/res/*.direct "$work"/res/*.layerfs "$work"/res/*.squashfuse; do
    [ -s "$f" ] && echo "- $(basename "$f"): $(xargs < "$f")"
done
echo
echo "</details>"
if [ -s "$work/res/errors" ]; then
    echo
    echo "Failures (samples left out):"
    sort "$work/res/errors" | uniq -c | sed 's/^ *\([0-9]*\) /- (×\1) /'
fi
exit 0
