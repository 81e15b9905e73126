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
