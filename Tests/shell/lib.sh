# Shared by the shell test suites: a tiny harness that counts and reports.
# Each check prints "ok" or "FAIL" with its name; the suite ends with "N passed, N failed".
passed=0
failed=0
skipped=0
failures=()

ok() { passed=$((passed + 1)); echo "ok   - $1"; }
fail() { failed=$((failed + 1)); failures+=("$1"); echo "FAIL - $1${2:+: $2}"; }
skip() { skipped=$((skipped + 1)); echo "SKIP - $1: $2"; }

# expect NAME COMMAND...: the command must exit 0.
expect() {
    local name=$1; shift
    local out
    if out=$("$@" 2>&1); then ok "$name"; else fail "$name" "exit $? from: $* :: ${out:0:500}"; fi
}

# expect_fail NAME PATTERN COMMAND...: the command must exit non-zero and print PATTERN.
expect_fail() {
    local name=$1 pattern=$2; shift 2
    local out rc=0
    out=$("$@" 2>&1) || rc=$?
    if [ $rc -eq 0 ]; then fail "$name" "expected failure, got exit 0 from: $*"; return; fi
    if [[ -n $pattern ]] && ! grep -qE -- "$pattern" <<<"$out"; then fail "$name" "output lacks /$pattern/: ${out:0:500}"; return; fi
    ok "$name"
}

# expect_eq NAME EXPECTED ACTUAL
expect_eq() {
    if [ "$2" == "$3" ]; then ok "$1"; else fail "$1" "expected [$2], got [$3]"; fi
}

# require_fuse WHAT: the suites that mount need a FUSE device; WHAT says what cannot run
# without one. On a developer's machine without it they are skipped (exit 0). Under CI (CI=true
# or CI=1, as CI services set it) a missing device fails instead: a CI run that skips every
# mount test would be green having tested none of them. The device is $LAYERFS_FUSE_DEVICE
# (default /dev/fuse), so that this check itself can be tested where /dev/fuse exists.
require_fuse() {
    local what=$1 device=${LAYERFS_FUSE_DEVICE:-/dev/fuse}
    [ -c "$device" ] && return 0
    case ${CI:-} in
    true | 1)
        echo "FAILED: $device is absent, so $what cannot run, and CI=$CI does not allow skipping them" >&2
        echo "0 passed, 1 failed"
        exit 1
        ;;
    esac
    echo "SKIPPED: $device is absent on this machine; $what cannot run here" >&2
    echo "0 passed, 0 failed, 1 skipped"
    exit 0
}

# For the suites' cleanup traps: unmount each MOUNTPOINT still mounted, lazily when it is busy.
release() {
    local m
    for m in "$@"; do
        grep -q " $m " /proc/mounts && { umount "$m" 2>/dev/null || umount -l "$m" 2>/dev/null; }
    done
    return 0
}

# mnt_new N: a fresh mountpoint $work/mntN (the suite sets work), listed in mounts for the
# suite's cleanup to release ("${mounts[@]}").
mounts=()
mnt_new() { local m="$work/mnt$1"; mkdir -p "$m"; mounts+=("$m"); echo "$m"; }
mounted() { grep -q " $1 fuse.layerfs " /proc/mounts; }

finish() {
    echo
    [ ${#failures[@]} -gt 0 ] && printf 'failed: %s\n' "${failures[@]}"
    if [ "$skipped" -gt 0 ]; then
        echo "$passed passed, $failed failed, $skipped skipped"
    else
        echo "$passed passed, $failed failed"
    fi
    [ "$failed" -eq 0 ]
}
