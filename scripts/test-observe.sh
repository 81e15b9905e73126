#!/usr/bin/env bash
# Observability on real mounts: the access log (--access-log) after a scripted run of reads
# by two users, a refused write and an update; SIGHUP rotation; `layerfs status` and the
# metrics file (--metrics-file) against the bytes actually read; the metrics file through
# prometheus_client's own parser; the status socket kept out of the mount and refusing users
# who may not read the mount.
# Usage: scripts/test-observe.sh LAYERFS
set -uo pipefail
layerfs=$(realpath "$1")
here=$(cd "$(dirname "$0")/.." && pwd)
source "$here/Tests/shell/lib.sh"

require_fuse "the observability tests"
if [ "$(id -u)" -ne 0 ]; then
    echo "SKIPPED: the observability tests read as a second user (setpriv), which needs root" >&2
    echo "0 passed, 0 failed, 1 skipped"
    exit 0
fi

work=$(mktemp -d /tmp/layerfs-observe-XXXXXX)
chmod 755 "$work"      # the second user must reach the mountpoints and the binary
cleanup() {
    release "${mounts[@]}"
    rm -rf "$work"
}
trap cleanup EXIT

daemon_pid() { pgrep -f -- "layerfs mount .*$1( |\$)" | head -1; }
# The second user: nobody, with no supplementary groups.
other() { setpriv --reuid=65534 --regid=65534 --clear-groups -- "$@"; }
# A copy of the binary the second user may run (the build tree may not be reachable).
mkdir -p "$work/bin" && cp "$layerfs" "$work/bin/layerfs" && chmod 755 "$work/bin/layerfs"
# Waits (up to 10 s) until COMMAND succeeds.
wait_for() { local i; for i in $(seq 100); do "$@" && return 0; sleep 0.1; done; return 1; }
json() { python3 -c "import json,sys; d=json.load(sys.stdin); print($1)"; }

# ---- the volume: the sample, plus D15 with layers of known sizes
v=$work/vol
"$layerfs" init --sample "$v" >/dev/null
in=$work/in15; mkdir -p "$in"
head -c 4096 /dev/urandom > "$in/layer-001"
head -c 10000 /dev/urandom > "$in/layer-002"
head -c 300000 /dev/urandom > "$in/layer-003"
: > "$in/layer-004"
"$layerfs" pack --dimension 15 --time 2024-06-01T00:00:00Z "$in" "$v/consciousness/D15" >/dev/null
chmod -R a+rX "$v"

# ---- 1. the access log after a scripted run
logdir=$work/log; mkdir -p "$logdir"
log=$logdir/access.log
m=$(mnt_new 1)
expect "mount with --access-log and -o allow_other" "$layerfs" mount --allow-other --access-log "$log" "$v" "$m"
pid=$(daemon_pid "$m")
gen1=$(getfattr --only-values -n user.generation "$m/D15" 2>/dev/null)
expect "root reads layer-001 (twice, in one process)" cat "$m/D15/layer-001" "$m/D15/layer-001"
expect "the second user reads layer-002" other cat "$m/D15/layer-002"
expect_fail "a write is refused" "Read-only file system" bash -c "echo x > '$m/D15/layer-001'"
expect_fail "setfattr is refused" "Read-only file system" setfattr -n user.x -v 1 "$m/D15/layer-001"
printf 'new bytes\n' > "$work/new"
expect "layerfs update replaces layer-001" "$layerfs" update "$v/consciousness/D15" --put 1="$work/new"
wait_for bash -c "[ \"\$(getfattr --only-values -n user.generation '$m/D15' 2>/dev/null)\" != '$gen1' ]"
gen2=$(getfattr --only-values -n user.generation "$m/D15" 2>/dev/null)
expect "root reads the new layer-001" cat "$m/D15/layer-001"
# Rotation: the log is moved away, then SIGHUP; nothing written before or after is lost.
expect "the second user reads layer-003 before the rotation" other cat "$m/D15/layer-003"
mv "$log" "$log.1"
expect "SIGHUP" kill -HUP "$pid"
wait_for test -e "$log"
expect "the log file is made again after SIGHUP" test -e "$log"
# D15's layers are all in the page cache by now (a READ of them would not reach the daemon):
# a first read of another dimension after the rotation.
expect "the second user reads D01/layer-001 after the rotation" other cat "$m/D01/layer-001"
gen3=$(getfattr --only-values -n user.generation "$m/D01" 2>/dev/null)
expect "unmount" "$layerfs" unmount "$m"
wait_for bash -c "! kill -0 $pid 2>/dev/null"

cat "$log.1" "$log" > "$work/all.log"
expect "every line is one JSON object with an RFC 3339 UTC millisecond time" python3 - "$work/all.log" <<'EOF'
import json, re, sys
for n, line in enumerate(open(sys.argv[1]), 1):
    d = json.loads(line)
    assert isinstance(d, dict), n
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", d["time"]), (n, d["time"])
EOF
# The lines, as "event uid gid process dimension layer generation" (generation shortened to
# which of the two it is), in order.
summary=$(python3 - "$work/all.log" "$gen1" "$gen2" "$gen3" <<'EOF'
import json, sys
gens = {sys.argv[2]: "gen1", sys.argv[3]: "gen2", sys.argv[4]: "gen3"}
for line in open(sys.argv[1]):
    d = json.loads(line)
    fields = [d["event"]]
    for k in ("uid", "gid", "process", "dimension", "layer", "outcome", "seen"):
        if k in d: fields.append(f"{k}={d[k]}")
    if "generation" in d: fields.append("generation=" + gens.get(d["generation"], d["generation"]))
    print(" ".join(fields))
EOF
)
expected="mount
generation dimension=consciousness/D15 outcome=served generation=gen1
read uid=0 gid=0 process=cat dimension=consciousness/D15 layer=1 seen=read generation=gen1
read uid=65534 gid=65534 process=cat dimension=consciousness/D15 layer=2 seen=read generation=gen1
generation dimension=consciousness/D15 outcome=served generation=gen2
read uid=0 gid=0 process=cat dimension=consciousness/D15 layer=1 seen=read generation=gen2
read uid=65534 gid=65534 process=cat dimension=consciousness/D15 layer=3 seen=read generation=gen2
generation dimension=consciousness/D01 outcome=served generation=gen3
read uid=65534 gid=65534 process=cat dimension=consciousness/D01 layer=1 seen=read generation=gen3
unmount"
# The refused write and setfattr leave no line: the mount is read-only to the kernel, which
# answers them itself (EROFS) without asking the daemon (docs/SEMANTICS.md, "Access log").
expect_eq "the access log has exactly the expected lines" "$expected" "$summary"
expect_eq "the rotated file ends with the line written before SIGHUP" "layer=3" \
    "$(tail -1 "$log.1" | grep -o '"layer":3' | tr -d '"' | tr : =)"
expect_eq "the read lines carry the readers' pids" "ok" "$(python3 -c "
import json,sys
pids=[json.loads(l)['pid'] for l in open('$work/all.log') if '\"read\"' in l]
print('ok' if all(p > 1 and p != $pid for p in pids) and len(set(pids)) == len(pids) else pids)")"
expect_eq "mount and unmount lines name the daemon" "$pid $pid" \
    "$(python3 -c "
import json
d=[json.loads(l) for l in open('$work/all.log')]
print(d[0]['pid'], d[-1]['pid'])")"

# --open-calls: every open is a line, even when the page cache answers the reads.
log2=$logdir/access-open.log
m=$(mnt_new 2)
expect "mount with --access-log --open-calls" "$layerfs" mount --allow-other --open-calls --access-log "$log2" "$v" "$m"
expect "root reads layer-002" cat "$m/D15/layer-002"
expect "the second user reads layer-002 (from the page cache)" other cat "$m/D15/layer-002"
expect "root reads layer-002 again" cat "$m/D15/layer-002"
expect "unmount" "$layerfs" unmount "$m"
expect_eq "one line per open, by user" "0 65534 0" \
    "$(python3 -c "
import json
print(' '.join(str(d['uid']) for d in map(json.loads, open('$log2')) if d['event'] == 'read' and d['layer'] == 2))")"

# ---- 2. status and the metrics file against the work done
metrics=$work/metrics/layerfs.prom; mkdir -p "$work/metrics"
total_bytes=$(cat "$in"/layer-00[234] "$work/new" | wc -c)     # D15 as updated above
m=$(mnt_new 3)
# Prefetch off: pushed bytes reach the kernel's cache without a READ, so READ bytes would not
# add up to what cat read (they are counted apart, as prefetch_bytes; checked below).
expect "mount with --metrics-file --metrics-interval 1, prefetch off" \
    "$layerfs" mount -o allow_other,metrics_file="$metrics",metrics_interval=1,prefetch_kb=0,prefetch_random_mb=0 "$v" "$m"
pid=$(daemon_pid "$m")
expect "status of a fresh mount" "$layerfs" status "$m"
expect "read every layer of D15 once" bash -c "cat '$m'/D15/layer-* > /dev/null"
expect "and again (from the page cache)" bash -c "cat '$m'/D15/layer-* > /dev/null"
expect_fail "getfattr of an attribute the layer lacks: ENODATA" "No such attribute" getfattr -n user.nope "$m/D15/layer-002"
expect_fail "twice" "No such attribute" getfattr -n user.nope "$m/D15/layer-002"
status=$("$layerfs" status --json "$m")
expect_eq "status: the two ENODATA answers are counted for D15" "2" \
    "$(json '[x for x in d["dimensions"] if x["dimension"] == "D15"][0]["errors"].get("ENODATA")' <<<"$status")"
expect_eq "status: bytes read equal the bytes of the layers read" "$total_bytes" \
    "$(json 'd["totals"]["read_bytes"]' <<<"$status")"
expect_eq "status: D15's own bytes read" "$total_bytes" \
    "$(json '[x for x in d["dimensions"] if x["dimension"] == "D15"][0]["read_bytes"]' <<<"$status")"
expect_eq "status: nothing pushed ahead with prefetch off" "0" "$(json 'd["totals"]["prefetch_bytes"]' <<<"$status")"
# Each page is read at most once (the page cache holds it after), each non-empty layer at
# least once: 3 to (1 + 3 + 74) READs.
reads=$(json 'd["totals"]["requests"].get("read", 0)' <<<"$status")
expect "status: READ requests within the kernel's caching (3..78, got $reads)" test "$reads" -ge 3 -a "$reads" -le 78
expect_eq "status: the daemon pid, the source" "$pid $v" "$(json 'd["pid"], d["source"]' <<<"$status" | tr -d "(),'")"
expect_eq "status: D15 loaded with 4 layers, 1 generation" "loaded 4 1 0" \
    "$(json '" ".join(str(x[k]) for x in d["dimensions"] if x["dimension"] == "D15" for k in ("status","layers","generations_loaded","generations_rejected"))' <<<"$status")"
expect "status: READ latency p50, p99, max are given" test "$(json 'all(v is not None for v in d["totals"]["read_latency"].values())' <<<"$status")" = True
expect "status table names the mount and D15" bash -c "'$layerfs' status '$m' | grep -q '^$m: source $v' && '$layerfs' status '$m' | grep -qE '^  D15 +loaded'"
expect "status without MOUNTPOINT lists it" bash -c "'$layerfs' status 2>/dev/null | grep -q '^$m: '"
# A rejected update is counted and shown.
mkdir -p "$v/consciousness/D14"
expect "D14 is read" ls "$m/D14"
cp "$v/consciousness/D15/region.mmap" "$work/region.good"
printf 'XXXX' > "$work/bad"; cat "$work/bad" > "$work/badregion"
# A new generation whose region does not match its index: written as a writer would, by swap.
mkdir "$v/consciousness/.D15.bad" && cp "$v/consciousness/D15/index.json" "$v/consciousness/.D15.bad/" \
    && head -c 4096 /dev/zero > "$v/consciousness/.D15.bad/region.mmap" \
    && mv "$v/consciousness/D15" "$v/consciousness/.D15.old" && mv "$v/consciousness/.D15.bad" "$v/consciousness/D15"
wait_for bash -c "'$layerfs' status --json '$m' | python3 -c 'import json,sys; d=json.load(sys.stdin); sys.exit(0 if [x for x in d[\"dimensions\"] if x[\"dimension\"] == \"D15\"][0][\"generations_rejected\"] == 1 else 1)'"
status=$("$layerfs" status --json "$m")
expect_eq "status: the refused generation is counted, its reason shown, the old one still served" "1 1 loaded yes" \
    "$(json '" ".join(str(x) for x in [[y for y in d["dimensions"] if y["dimension"] == "D15"][0][k] for k in ("generations_loaded","generations_rejected","status")]) + (" yes" if [y for y in d["dimensions"] if y["dimension"] == "D15"][0]["error"] else " no")' <<<"$status")"
rm -rf "$v/consciousness/D15" && mv "$v/consciousness/.D15.old" "$v/consciousness/D15"
# The restore passes through "D15 missing": wait until it is served again, then for a metrics
# file written after that (one interval), so the file describes the restored dimension.
expect "D15 is served again after the restore" wait_for bash -c "'$layerfs' status --json '$m' | python3 -c 'import json,sys; d=json.load(sys.stdin); x=[x for x in d[\"dimensions\"] if x[\"dimension\"] == \"D15\"][0]; sys.exit(0 if x[\"status\"] == \"loaded\" and x[\"layers\"] == 4 else 1)'"
served_again=$(date +%s.%N)
expect "a metrics file written after that" wait_for bash -c "[ -s '$metrics' ] && [ \"\$(stat -c %.9Y '$metrics')\" \> '$served_again' ]"
expect "the metrics file exists" test -s "$metrics"
expect "no temporary file is left beside it" test "$(ls -A "$work/metrics" | wc -l)" -eq 1
venv=$work/venv
if python3 -m venv "$venv" >/dev/null 2>&1 && "$venv/bin/pip" install -q prometheus_client >/dev/null 2>&1; then
    expect "prometheus_client parses the metrics file; it agrees with status" "$venv/bin/python" - "$metrics" "$total_bytes" "$m" <<'EOF'
import sys
from prometheus_client.parser import text_string_to_metric_families
text = open(sys.argv[1]).read()
families = {f.name: f for f in text_string_to_metric_families(text)}
want = ["layerfs_requests", "layerfs_errors", "layerfs_read_bytes", "layerfs_read_latency_seconds",
        "layerfs_generations_loaded", "layerfs_generations_rejected", "layerfs_generations_retired_held",
        "layerfs_lookups_outstanding", "layerfs_dimension_layers"]
missing = [w for w in want if w not in families]
assert not missing, missing
def sample(family, name, **labels):
    for s in families[family].samples:
        if s.name == name and all(s.labels.get(k) == v for k, v in labels.items()):
            assert s.labels["mountpoint"] == sys.argv[3], s.labels
            return s.value
    raise AssertionError(f"no {name} {labels}")
assert sample("layerfs_read_bytes", "layerfs_read_bytes_total", dimension="D15") == int(sys.argv[2])
count = sample("layerfs_read_latency_seconds", "layerfs_read_latency_seconds_count", dimension="D15")
inf = sample("layerfs_read_latency_seconds", "layerfs_read_latency_seconds_bucket", dimension="D15", le="+Inf")
reads = sample("layerfs_requests", "layerfs_requests_total", dimension="D15", operation="read")
assert count == inf == reads, (count, inf, reads)
assert families["layerfs_read_latency_seconds"].type == "histogram"
assert sample("layerfs_generations_rejected", "layerfs_generations_rejected_total", dimension="D15") == 1
n = sample("layerfs_dimension_layers", "layerfs_dimension_layers", dimension="D15"); assert n == 4, n
EOF
else
    skip "prometheus_client parses the metrics file" "pip could not install prometheus_client (offline?)"
fi

# ---- 3. the control path: not in the mount, refusing who may not read the mount
device=$(awk -v m="$m" '$5 == m { print $3 }' /proc/self/mountinfo | tail -1)
sock=/run/layerfs/dev-${device/:/-}.sock
expect "the status socket is /run/layerfs/dev-MAJOR-MINOR.sock" test -S "$sock"
listing=$( (cd "$m" && find . | sort) )
expect_eq "find of the mount shows only dimensions and layers" "" \
    "$(grep -vE '^\.$|^\./(D[0-9]+|proto)(/[A-Za-z0-9._-]+)?(/layer-[0-9]+)?$' <<<"$listing")"
expect_eq "no hidden entry in ls -a of the root" ". .. D01 D02 D03 D04 D05 D06 D07 D08 D09 D10 D11 D12 D13 D14 D15" \
    "$(ls -a "$m" | xargs)"
expect "rsync -a of the mount" rsync -a "$m/" "$work/copy/"
expect_eq "the copy holds exactly what find listed" "$listing" "$( (cd "$work/copy" && find . | sort) )"
expect_eq "the second user may ask (allow_other, root directory readable)" "$m" \
    "$(other "$work/bin/layerfs" status --json "$m" | json 'd["mountpoint"]')"
expect "unmount" "$layerfs" unmount "$m"

# With the prefetcher on (the default), what cat read reached it by READ or pushed ahead.
m=$(mnt_new 4)
expect "mount with the prefetcher on" "$layerfs" mount "$v" "$m"
expect "read every layer of D15 once, in order" bash -c "cat '$m'/D15/layer-* > /dev/null"
status=$("$layerfs" status --json "$m")
expect "status: READ bytes plus prefetch bytes cover what was read ($total_bytes)" \
    test "$(json 'd["totals"]["read_bytes"] + d["totals"]["prefetch_bytes"]' <<<"$status")" -ge "$total_bytes"
expect "unmount" "$layerfs" unmount "$m"
expect "the socket goes with the mount" bash -c "! test -e '$sock'"

m=$(mnt_new 4)
expect "mount without allow_other" "$layerfs" mount "$v" "$m"
device=$(awk -v m="$m" '$5 == m { print $3 }' /proc/self/mountinfo | tail -1)
sock=/run/layerfs/dev-${device/:/-}.sock
expect_fail "the second user cannot read the mount" "Permission denied" other ls "$m"
expect_fail "and layerfs status refuses them" "permission denied" other "$work/bin/layerfs" status "$m"
expect_eq "a raw connection gets a refusal and no figures" "refused: uid 65534 may not read this mount" \
    "$(other /usr/bin/python3 -c "
import socket,sys
s=socket.socket(socket.AF_UNIX); s.connect(sys.argv[1]); print(s.makefile().read().strip())" "$sock")"
expect "root may" "$layerfs" status "$m"
expect "unmount" "$layerfs" unmount "$m"

m=$(mnt_new 5)
expect "mount with allow_other and --dir-mode 0700" "$layerfs" mount --allow-other --dir-mode 0700 "$v" "$m"
expect_fail "the second user cannot read this mount's root" "Permission denied" other ls "$m"
expect_fail "nor its status" "permission denied" other "$work/bin/layerfs" status "$m"
expect "unmount" "$layerfs" unmount "$m"

# ---- 4. bad options are refused before mounting
m=$(mnt_new 6)
expect_fail "--access-log must be absolute" "must be an absolute path" "$layerfs" mount --access-log rel.log "$v" "$m"
expect_fail "--metrics-file in a missing directory" "does not exist" "$layerfs" mount --metrics-file /nonexistent/x.prom "$v" "$m"
expect_fail "--metrics-file naming a directory" "names no file" "$layerfs" mount --metrics-file "$work/metrics/" "$v" "$m"
expect_fail "--metrics-interval 0" "out of range \(1 to 86400 seconds\)" "$layerfs" mount --metrics-interval 0 "$v" "$m"
expect_fail "-o metrics_interval=x" "not a whole number" "$layerfs" mount -o metrics_interval=x "$v" "$m"
expect_fail "status of a directory that is no mount" "is not mounted" "$layerfs" status "$work"
expect "nothing was mounted" bash -c "! grep -q ' $m ' /proc/mounts"

finish
