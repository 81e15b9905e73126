#!/usr/bin/env bash
# FUSE over io_uring (-o uring), on real mounts: the rings are registered and serve the
# requests (the daemon logs both), every layer reads back byte for byte, ls/stat/getfattr
# answer, readers on every CPU at once, a clean unmount; the fallback to /dev/fuse when the
# kernel parameter is off; the default (no -o uring) untouched with the parameter on; and the
# whole of test-mount.sh again with -o uring added to every `layerfs mount`.
# Needs root (it turns /sys/module/fuse/parameters/enable_uring on, and back to what it was).
# Usage: scripts/test-uring.sh LAYERFS
set -uo pipefail
layerfs=$(realpath "$1")
here=$(cd "$(dirname "$0")/.." && pwd)
source "$here/Tests/shell/lib.sh"
tool="$here/Tests/shell/volume_tool.py"

require_fuse "the io_uring tests"
param=/sys/module/fuse/parameters/enable_uring
if [ ! -e "$param" ]; then
    echo "SKIPPED: this kernel has no FUSE over io_uring ($param is absent); the io_uring tests cannot run here" >&2
    echo "0 passed, 0 failed, 1 skipped"
    exit 0
fi
if [ ! -w "$param" ]; then
    echo "SKIPPED: $param is not writable (not root); the io_uring tests cannot run here" >&2
    echo "0 passed, 0 failed, 1 skipped"
    exit 0
fi
original=$(cat "$param")

work=$(mktemp -d /tmp/layerfs-uring-XXXXXX)
cleanup() {
    release "${mounts[@]}"
    echo "$original" > "$param"
    rm -rf "$work"
}
trap cleanup EXIT

daemon_gone() { for _ in $(seq 50); do pgrep -f -- "layerfs mount .*$1\$" >/dev/null || return 0; sleep 0.1; done; return 1; }
# Layers that differ from the region's bytes (the expected tree is written by volume_tool.py).
differing() {
    local bad=0 f
    while IFS= read -r f; do cmp -s "$f" "$1/${f#"$expected"/}" || bad=$((bad + 1)); done < <(find "$expected" -type f)
    echo "$bad"
}

v=$work/vol
"$layerfs" init --sample "$v" >/dev/null
head -c 3000000 /dev/urandom > "$work/big"
mkdir -p "$work/in"; cp "$work/big" "$work/in/layer-001"
"$layerfs" pack --dimension 15 "$work/in" "$v/consciousness/D15" >/dev/null   # larger than one request
expected=$work/expected
python3 "$tool" expect "$v" "$expected"
layers=$(find "$expected" -type f | wc -l)
cpus=$(getconf _NPROCESSORS_CONF)

# ---- the parameter off: the option falls back to /dev/fuse, said once
echo N > "$param"
m=$(mnt_new 1)
expect "parameter off: mount -o uring succeeds" "$layerfs" mount -o uring,log_file="$work/off.log" "$v" "$m"
expect_eq "parameter off: every layer reads back ($layers layers)" "0" "$(differing "$m")"
expect "parameter off: the log says why the ring is not used" \
    grep -q "io_uring: not used (the fuse module parameter enable_uring is off); requests go through /dev/fuse" "$work/off.log"
expect "parameter off: unmount" "$layerfs" unmount "$m"
expect "parameter off: the daemon exits" daemon_gone "$m"

# ---- the parameter on: the rings serve
echo Y > "$param"
m=$(mnt_new 2)
expect "mount -o uring" "$layerfs" mount -o uring,log_file="$work/on.log" "$v" "$m"
sleep 0.3   # the queues register right after INIT's reply, on their own threads
expect "every queue registered (one per CPU: $cpus)" grep -q "io_uring: in use, $cpus queues of" "$work/on.log"
expect_eq "every layer reads back byte for byte ($layers layers)" "0" "$(differing "$m")"
expect_eq "ls lists the dimensions" "$(ls "$expected" | xargs)" "$(ls "$m" | grep -v proto | xargs)"
expect_eq "ls -l of a dimension" "$(ls "$expected/D01" | wc -l)" "$(ls -l "$m/D01" | grep -c '^-')"
expect_eq "stat: size of a layer larger than one request" "3000000 regular file" "$(stat -c '%s %F' "$m/D15/layer-001")"
expect_eq "getfattr: user.checksum is the bytes' digest" "sha256:$(sha256sum < "$work/big" | cut -d' ' -f1)" \
    "$(getfattr --absolute-names --only-values -n user.checksum "$m/D15/layer-001")"
# Readers pinned to every CPU at once: each CPU's queue serves its own.
echo 3 > /proc/sys/vm/drop_caches
for c in $(seq 0 $((cpus - 1))); do
    taskset -c "$c" bash -c 'for f in "$1"/D*/layer-*; do cat "$f"; done | sha256sum' _ "$m" > "$work/cpu$c" &
done
wait
want=$(for f in "$expected"/D*/layer-*; do cat "$f"; done | sha256sum)
same=0; for c in $(seq 0 $((cpus - 1))); do [ "$(cat "$work/cpu$c")" == "$want" ] && same=$((same + 1)); done
expect_eq "readers on every CPU at once read the same bytes" "$cpus" "$same"
expect "unmount" "$layerfs" unmount "$m"
expect "the daemon exits after the unmount" daemon_gone "$m"
served=$(grep -oE "io_uring: [0-9]+ requests served through the rings" "$work/on.log" | grep -oE "[0-9]+" | head -1)
expect "requests were served through the rings (${served:-none})" test "${served:-0}" -gt "$layers"

# ---- the parameter on, no option: the default path, untouched
m=$(mnt_new 3)
expect "no -o uring: mount" "$layerfs" mount -o log_file="$work/default.log" "$v" "$m"
expect_eq "no -o uring: every layer reads back" "0" "$(differing "$m")"
expect "no -o uring: unmount" "$layerfs" unmount "$m"
expect_eq "no -o uring: the ring is never mentioned" "0" "$(grep -c io_uring "$work/default.log")"

# ---- auto_unmount keeps /dev/fuse (a dead daemon's rings go after fusermount3's probe)
m=$(mnt_new 4)
expect "-o uring with --auto-unmount: mount" "$layerfs" mount --auto-unmount -o uring,log_file="$work/auto.log" "$v" "$m"
expect "... the log says the ring is not used" grep -q "io_uring: not used with auto_unmount" "$work/auto.log"
kill -9 "$(pgrep -f -- "layerfs mount .*$m\$" | head -1)"
for _ in $(seq 50); do mounted "$m" || break; sleep 0.1; done
expect_eq "... the daemon killed, the mount goes by itself" "no" "$(mounted "$m" && echo yes || echo no)"

# ---- the whole mount suite with -o uring on every mount
# (readable by all: the suite also runs it as an unprivileged user)
wrapper=$work/bin/layerfs
mkdir -p "$work/bin"
chmod 755 "$work" "$work/bin"
cat > "$wrapper" <<EOF
#!/usr/bin/env bash
if [ "\${1:-}" = mount ]; then shift; exec "$layerfs" mount -o uring "\$@"; fi
exec "$layerfs" "\$@"
EOF
chmod +x "$wrapper"
"$here/scripts/test-mount.sh" "$wrapper" > "$work/mount-suite.out" 2>&1
mount_rc=$?
summary=$(tail -1 "$work/mount-suite.out")
[ $mount_rc -eq 0 ] || grep -E "^FAIL" "$work/mount-suite.out" | sed 's/^/    /'
expect "scripts/test-mount.sh passes with -o uring ($summary)" test $mount_rc -eq 0

echo "$original" > "$param"
expect_eq "the parameter is back to what it was" "$original" "$(cat "$param")"
finish
