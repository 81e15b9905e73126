#!/usr/bin/env bash
# What observability costs: cold 4 KiB reads (one `cat` of 1000 layers of 4 KiB on a fresh
# mount, the source in the page cache) with the access log and the metrics file off and on,
# as ratios to the mount without either, all measured in one run.
#
#   scripts/bench-observe.sh LAYERFS          (make bench)
#
# Cases, interleaved round by round so that drifting load hits them alike:
#   off            no access log, no metrics file (the counters are always on)
#   log            --access-log (1000 lines: each layer's first read by the process)
#   metrics        --metrics-file --metrics-interval 1
#   log+metrics    both
#   log+open-calls --access-log --open-calls (a line per open: every open asks the daemon)
# Each case: the wall time of the cat, and the daemon's CPU time while serving it (all its
# threads, the access log's writer included). Target: log ≤ 1.10× off (wall time). Never
# fails on a timing. BENCH_ROUNDS (default 7).
source "$(dirname "$0")/bench-common.sh"
rounds=${BENCH_ROUNDS:-7}
log() { echo "bench-observe: $*" >&2; }
source "$here/../Tests/shell/lib.sh"
require_fuse "the observability benchmark"

work=$(mktemp -d /tmp/layerfs-bench-observe-XXXXXX)
m=$work/mnt; mkdir -p "$m"
cleanup() {
    grep -q " $m " /proc/mounts && { umount "$m" 2>/dev/null || umount -l "$m"; }
    rm -rf "$work"
}
trap cleanup EXIT

in=$work/in; mkdir -p "$in"
python3 - "$in" <<'PY'
import os, sys
for i in range(1, 1001):
    with open(os.path.join(sys.argv[1], "layer-%03d" % i if i < 1000 else "layer-%d" % i), "wb") as f:
        f.write(os.urandom(4096))
PY
"$layerfs" init "$work/vol" >/dev/null
"$layerfs" pack --dimension 1 --force "$in" "$work/vol/consciousness/D01" >/dev/null
cat "$work/vol/consciousness/D01/"* > /dev/null      # the source warm

cases=(off log metrics log+metrics log+open-calls)
options() {
    case $1 in
    off) ;;
    log) echo "--access-log $work/access-$2.log" ;;
    metrics) echo "--metrics-file $work/metrics.prom --metrics-interval 1" ;;
    log+metrics) echo "--access-log $work/access-$2.log --metrics-file $work/metrics.prom --metrics-interval 1" ;;
    log+open-calls) echo "--access-log $work/access-$2.log --open-calls" ;;
    esac
}
declare -A times cpus
# The daemon's CPU time so far, in ns, over all its threads (schedstat: exact, unlike the
# 10 ms ticks of /proc/PID/stat): less disturbed by a loaded machine than the wall time.
daemon_cpu() { cat /proc/"$1"/task/*/schedstat 2>/dev/null | awk '{ s += $1 } END { printf "%d", s }'; }
for r in $(seq "$rounds"); do
    # Rotate the order each round.
    for k in $(seq 0 $((${#cases[@]} - 1))); do
        c=${cases[$(((k + r) % ${#cases[@]}))]}
        # shellcheck disable=SC2046
        "$layerfs" mount --log-file "$work/daemon.log" $(options "$c" "$r") "$work/vol" "$m" || { log "mount failed ($c)"; exit 1; }
        ls "$m/D01" > /dev/null
        pid=$(pgrep -f -- "layerfs mount .*$m\$" | head -1)
        cpu0=$(daemon_cpu "$pid")
        start=$(date +%s%N)
        cat "$m"/D01/layer-* > /dev/null
        end=$(date +%s%N)
        sleep 0.2     # the access log's writer finishes its batch
        cpu1=$(daemon_cpu "$pid")
        "$layerfs" unmount "$m"
        times[$c]+="$(((end - start) / 1000)) "
        cpus[$c]+="$(((cpu1 - cpu0) / 1000)) "
    done
done
median() { tr ' ' '\n' | grep . | sort -n | awk '{ a[NR] = $1 } END { print a[int((NR + 1) / 2)] }'; }
base=$(median <<<"${times[off]}")
lines=$(cat "$work"/access-*.log 2>/dev/null | grep -c '"event":"read"')
echo
echo "Observability overhead: cat of 1000 × 4 KiB layers on a fresh mount, median of $rounds rounds"
echo "(load average before: $(cut -d' ' -f1-3 /proc/loadavg); $(nproc) CPUs; read lines logged in all rounds: $lines)"
echo
cpu_base=$(median <<<"${cpus[off]}")
echo "| case | wall time, median | ÷ off | daemon CPU, median | ÷ off | target (wall) |"
echo "|---|---|---|---|---|---|"
for c in "${cases[@]}"; do
    t=$(median <<<"${times[$c]}")
    cpu=$(median <<<"${cpus[$c]}")
    ratio=$(awk -v a="$t" -v b="$base" 'BEGIN { printf "%.2f", a / b }')
    cpu_ratio=$(awk -v a="$cpu" -v b="$cpu_base" 'BEGIN { printf "%.2f", a / b }')
    target="—"
    if [ "$c" = log ]; then
        target=$(awk -v r="$ratio" 'BEGIN { print (r <= 1.10) ? "≤ 1.10×: **met**" : "≤ 1.10×: **missed**" }')
    fi
    echo "| $c | $(awk -v t="$t" 'BEGIN { printf "%.1f ms", t / 1000 }') | ${ratio}× | $(awk -v t="$cpu" 'BEGIN { printf "%.1f ms", t / 1000 }') | ${cpu_ratio}× | $target |"
done
echo "(load average after: $(cut -d' ' -f1-3 /proc/loadavg))"
