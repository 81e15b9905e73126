#!/usr/bin/env bash
# Soak: a consumer mount releases every generation it stops serving. One dimension of ~200
# layers is replaced REPLACEMENTS times (a few layers changed each time, now and then one added
# and one deleted; the two writing procedures alternate) while `ls -l` loops, scandir+stat
# loops, readers holding files open across updates and open-read-close readers run on the
# mount. Then everything stops, the kernel drops its caches (FORGETs), and the daemon must be
# back where it started: no deleted region.mmap mapped or open, as many fds as after the first
# listing, VmRSS no more than 10 % over its value after the first 100 replacements; every read
# one generation's bytes, no read error, the daemon alive and serving the last generation.
# Usage: scripts/soak.sh LAYERFS [REPLACEMENTS]    (default 1000; `make test` runs 150)
# SOAK_LS_LOOPS (default 6) sets how many `ls -l` loops race the replacements.
set -uo pipefail
layerfs=$(realpath "$1")
replacements=${2:-1000}
ls_loops=${SOAK_LS_LOOPS:-6}
here=$(cd "$(dirname "$0")/.." && pwd)
source "$here/Tests/shell/lib.sh"

require_fuse "the soak"
work=$(mktemp -d /tmp/layerfs-soak-XXXXXX)
v=$work/vol; in=$work/in; m=$work/mnt; stop=$work/stop; deleted=$work/deleted
mkdir -p "$m" "$in"; : > "$deleted"
jobs_started=()
cleanup() {
    touch "$stop"
    for p in "${jobs_started[@]}"; do kill "$p" 2>/dev/null; done
    wait 2>/dev/null
    release "$m"
    rm -rf "$work"
}
trap cleanup EXIT

# Layer ID as written by replacement GEN: the line "layer-NNN gen GEN" repeated, cut to a size
# that depends on both (soak_readers.py checks every read against the same rule).
write_layer() {
    local name; printf -v name 'layer-%03d' "$1"
    yes "$name gen $2" | head -c $(( 64 + ($1 * 7919 + $2 * 131) % 24000 )) > "$in/$name"
}
ids=()
for i in $(seq 1 200); do write_layer "$i" 0; ids+=("$i"); done
next_id=201
"$layerfs" init "$v" >/dev/null
"$layerfs" pack --dimension 1 "$in" "$v/consciousness/D01" >/dev/null
"$layerfs" mount --log-file "$work/daemon.log" "$v" "$m"
pid=$(pgrep -f -- "mount --log-file $work/daemon.log .* $m\$")
if [ -z "$pid" ]; then fail "mount: daemon found"; finish; exit; fi

# Each prints -1 once the daemon is gone.
daemon_figure() { local n; n=$("$@" 2>/dev/null); [ -d "/proc/$pid" ] && [ -n "$n" ] && echo "$n" || echo -1; }
fd_count() { daemon_figure bash -c "ls /proc/$pid/fd | wc -l"; }
deleted_fds() { daemon_figure bash -c "ls -l /proc/$pid/fd | grep -c '(deleted)\$'"; }
deleted_maps() { daemon_figure grep -c 'region\.mmap (deleted)$' "/proc/$pid/maps"; }
rss_kb() { daemon_figure awk '/^VmRSS:/ {print $2}' "/proc/$pid/status"; }
daemon_alive() { kill -0 "$pid" 2>/dev/null; }
served() { grep -c 'D01: serving generation' "$work/daemon.log"; }

ls -l "$m/D01" >/dev/null          # loads D01: the daemon now holds its one fd for it
fds_base=$(fd_count); rss_base=$(rss_kb); maps_base=$(deleted_maps)
fds_base_list=$(ls -l "/proc/$pid/fd" 2>/dev/null)

# ---- the loops and readers, all stopped by $stop
ls_loop() {
    local n=0 bad=0
    while [ ! -e "$stop" ]; do
        ls -l "$m/D01" >/dev/null 2>>"$work/ls.$1.err" || bad=$((bad + 1))
        n=$((n + 1))
    done
    echo "$n $bad" > "$work/ls.$1.count"
}
for i in $(seq 1 "$ls_loops"); do ls_loop "$i" & jobs_started+=($!); done
python3 "$here/Tests/shell/soak_readers.py" "$m/D01" "$stop" "$deleted" \
    --oneshot 2 --holders 2 --scanners 2 > "$work/readers.txt" 2> "$work/readers.err" &
readers=$!; jobs_started+=($readers)
sleep 0.5

# ---- the replacements
RANDOM=1                           # the same choices on every run
rss_at=$(( replacements < 100 ? replacements : 100 ))
rss_100=""; maps_100=""; maps_peak=0; pack_failed=0; swapped=0; by_file=0
start=$(date +%s.%N)
for g in $(seq 1 "$replacements"); do
    changes=$(( 2 + RANDOM % 4 ))    # 2-5 layers changed, chosen anew each time
    for ((j = 0; j < changes; j++)); do write_layer "${ids[RANDOM % ${#ids[@]}]}" "$g"; done
    if [ $((g % 10)) -eq 5 ]; then  # every tenth: one layer added, one deleted
        write_layer "$next_id" "$g"
        k=$(( RANDOM % ${#ids[@]} ))
        printf -v name 'layer-%03d' "${ids[k]}"
        echo "$name" >> "$deleted"; rm "$in/$name"
        ids=("${ids[@]:0:k}" "${ids[@]:k+1}" "$next_id"); next_id=$((next_id + 1))
    fi
    if [ $((g % 2)) -eq 0 ]; then mode=--file-by-file; by_file=$((by_file + 1)); else mode=; swapped=$((swapped + 1)); fi
    "$layerfs" pack --dimension 1 $mode "$in" "$v/consciousness/D01" >/dev/null 2>>"$work/pack.err" || pack_failed=$((pack_failed + 1))
    if [ $((g % 50)) -eq 0 ] || [ "$g" -eq "$rss_at" ]; then
        n=$(deleted_maps); [ "$n" -gt "$maps_peak" ] && maps_peak=$n
        [ "$g" -eq "$rss_at" ] && { rss_100=$(rss_kb); maps_100=$n; }
    fi
done
elapsed=$(printf %.1f "$(echo "$(date +%s.%N) - $start" | bc)")
[ -n "$rss_100" ] || { rss_100=$(rss_kb); maps_100=$(deleted_maps); }

# ---- stop everything, let the mount take the last update, drop the kernel's caches
touch "$stop"
wait "${jobs_started[@]}"
jobs_started=()
sleep 2
# Like the baseline, counted after a listing: a dimension that came back under a directory swap
# is loaded (and its region descriptor opened) on first use, not by the watcher.
ls -l "$m/D01" >/dev/null 2>&1
echo 3 > /proc/sys/vm/drop_caches
waited=0
while :; do                        # FORGETs arrive asynchronously: poll up to 10 s
    maps_end=$(deleted_maps); fds_del_end=$(deleted_fds); fds_end=$(fd_count)
    [ "$maps_end" -eq 0 ] && [ "$fds_del_end" -eq 0 ] && [ "$fds_end" -eq "$fds_base" ] && break
    [ "$waited" -ge 100 ] && break
    sleep 0.1; waited=$((waited + 1))
    [ $((waited % 20)) -eq 0 ] && echo 3 > /proc/sys/vm/drop_caches
done
rss_end=$(rss_kb)

r=$(cat "$work/readers.txt")
field() { sed -E "s/.*$1=([0-9]+).*/\\1/" <<<"$r"; }
ls_runs=0; ls_bad=0
for i in $(seq 1 "$ls_loops"); do read -r n b < "$work/ls.$i.count"; ls_runs=$((ls_runs + n)); ls_bad=$((ls_bad + b)); done
# ls -l may list a name the next generation deleted; anything else it complains about is an error.
cat "$work"/ls.*.err 2>/dev/null | grep -vFf <(sed "s|.*|'$m/D01/&': No such file or directory|" "$deleted") > "$work/ls.errors"
ls_errors=$(wc -l < "$work/ls.errors")
head -5 "$work/readers.err"; head -5 "$work/ls.errors"
[ -s "$work/pack.err" ] && head -5 "$work/pack.err"

expect_eq "every pack succeeded" 0 "$pack_failed"
expect_eq "after drop_caches: no deleted region.mmap mapped" 0 "$maps_end"
expect_eq "after drop_caches: no deleted file open" 0 "$fds_del_end"
expect_eq "after drop_caches: as many fds as after the first listing" "$fds_base" "$fds_end"
[ "$fds_base" = "$fds_end" ] || { echo "  daemon fds after the first listing:"; sed "s/^/    /" <<<"$fds_base_list"; echo "  daemon fds now:"; ls -l "/proc/$pid/fd" 2>/dev/null | sed "s/^/    /"; }
expect "VmRSS at the end ($rss_end kB) within 10 % of after $rss_at replacements ($rss_100 kB)" \
    test $(( rss_end * 10 )) -le $(( rss_100 * 11 ))
expect_eq "every read was one generation's bytes" 0 "$(field mismatches)"
expect_eq "no read error" 0 "$(field errors)"
expect_eq "ls -l: no error but for deleted layers" 0 "$ls_errors"
expect "daemon alive" daemon_alive
expect_eq "the mount serves the last generation" \
    "$(python3 -c "import json;print(json.load(open('$v/consciousness/D01/index.json'))['region_checksum'])")" \
    "$(getfattr --absolute-names --only-values -n user.generation "$m/D01" 2>&1)"
expect "the mount answers: every layer has its last bytes" diff -r "$in" "$m/D01"

cat <<EOF

soak summary
  replacements        $replacements in ${elapsed} s ($swapped by directory swap, $by_file file by file; $(served) generations served by the mount); $(( ${#ids[@]} )) layers at the end, $(wc -l < "$deleted") deleted, $((next_id - 201)) added
  listings            $ls_runs ls -l by $ls_loops loops ($ls_bad exited non-zero), $(field scans) scandir+lstat ($(field stats) lstat)
  reads               $(field oneshot_reads) open-read-close, $(field held_reads) through $(field held_fds) fds held 1-4 s; $(field mismatches) matched no generation, $(field errors) errors, $(field gone) hit a deleted layer
  deleted mappings    before $maps_base; after $rss_at replacements $maps_100; peak seen $maps_peak; after drop_caches $maps_end (waited $((waited / 10)).$((waited % 10)) s)
  daemon fds          after mount and first listing $fds_base; after drop_caches $fds_end, $fds_del_end of them deleted files
  daemon VmRSS        after mount and first listing $rss_base kB; after $rss_at replacements $rss_100 kB; at the end $rss_end kB
EOF
expect "unmount" "$layerfs" unmount "$m"
finish
