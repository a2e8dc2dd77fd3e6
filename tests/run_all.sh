#!/usr/bin/env bash
# run_all.sh -- runs every test: the cmocka unit test binaries found under
# $RINGMQ_TESTBIN, then the end-to-end suite (tests/e2e/run.py), and ends with
# one line "N passed, M failed" counting test cases.  Exits non-zero when a
# test failed or nothing ran.
#
#   RINGMQ_BIN      broker binary for the e2e suite (default bin/ringmq)
#   RINGMQ_TESTBIN  directory searched for executables named test_*
#                   (default build/rel/tests)
#   BROKER          ringmq (default) or mosquitto, passed on to the e2e suite
#   UNIT_TIMEOUT    seconds one unit test binary may run (default 300)
#   E2E_TIMEOUT     seconds the whole e2e suite may run (default 1800)
set -u

root=$(cd "$(dirname "$0")/.." && pwd)
abspath() {
    case "$1" in
    /*) printf '%s\n' "$1" ;;
    *) printf '%s\n' "$PWD/$1" ;;
    esac
}
export RINGMQ_BIN=$(abspath "${RINGMQ_BIN:-bin/ringmq}")
RINGMQ_TESTBIN=$(abspath "${RINGMQ_TESTBIN:-build/rel/tests}")
UNIT_TIMEOUT=${UNIT_TIMEOUT:-300}
E2E_TIMEOUT=${E2E_TIMEOUT:-1800}
cd "$root" || exit 2

passed=0
failed=0
tmp=$(mktemp -d "${TMPDIR:-/tmp}/ringmq-run-all.XXXXXX")
trap 'rm -rf "$tmp"' EXIT

# ---- unit tests -----------------------------------------------------------
# Counts cases from cmocka's summary lines (a binary may run several groups):
#   [  PASSED  ] N test(s).
#   [  FAILED  ] N test(s), listed below:
run_unit() {
    local bin=$1 name out rc p f
    name=${bin#"$RINGMQ_TESTBIN"/}
    out=$tmp/unit.out
    # In a subshell, so the shell's "Segmentation fault" lands in $out.
    ( CMOCKA_MESSAGE_OUTPUT=STDOUT timeout -k 5 "$UNIT_TIMEOUT" "$bin" ) \
        >"$out" 2>&1
    rc=$?
    local pass_re='^\[  PASSED  \] \([0-9][0-9]*\) test(s)\.'
    local fail_re='^\[  FAILED  \] \([0-9][0-9]*\) test(s), listed below:'
    p=$(sed -n "s/$pass_re.*/\\1/p" "$out" | awk '{s += $1} END {print s + 0}')
    f=$(sed -n "s/$fail_re.*/\\1/p" "$out" | awk '{s += $1} END {print s + 0}')
    local why=""
    if ! grep -q -e "$pass_re" -e "$fail_re" "$out"; then
        # No summary at all: a crash, a hang or not a cmocka binary.
        if [ "$rc" -eq 124 ]; then why="timed out after ${UNIT_TIMEOUT} s"
        elif [ "$rc" -gt 128 ]; then why="killed by signal $((rc - 128))"
        else why="exit status $rc without a cmocka summary"; fi
        f=1
    elif [ "$rc" -ne 0 ] && [ "$f" -eq 0 ]; then
        # All cases passed, then the binary failed (sanitizer report at
        # exit, crash in teardown): that is a failure too.
        why="exit status $rc after its tests passed"
        f=1
    fi
    passed=$((passed + p))
    failed=$((failed + f))
    if [ "$f" -eq 0 ]; then
        printf 'unit %s: %d passed\n' "$name" "$p"
    else
        printf 'unit %s: %d passed, %d failed%s\n' "$name" "$p" "$f" \
            "${why:+ ($why)}"
        sed 's/^/    | /' "$out" | tail -n 60
    fi
}

if [ -d "$RINGMQ_TESTBIN" ]; then
    mapfile -t bins < <(find "$RINGMQ_TESTBIN" -type f -name 'test_*' \
                             -perm -u+x | sort)
    for bin in "${bins[@]}"; do
        run_unit "$bin"
    done
    [ "${#bins[@]}" -gt 0 ] ||
        echo "unit: no test_* binaries under $RINGMQ_TESTBIN"
else
    echo "unit: $RINGMQ_TESTBIN does not exist"
fi

# ---- end-to-end tests -----------------------------------------------------
e2e_out=$tmp/e2e.out
timeout -k 10 "$E2E_TIMEOUT" /usr/bin/python3 tests/e2e/run.py 2>&1 |
    tee "$e2e_out" | sed 's/^/  /'
e2e_rc=${PIPESTATUS[0]}
summary=$(grep -E '^e2e: [0-9]+ passed, [0-9]+ failed$' "$e2e_out" | tail -n 1)
if [ -n "$summary" ]; then
    # One line per test file, from the PASS/FAIL lines.
    grep -E '^(PASS|FAIL) [^ ]+::' "$e2e_out" |
        sed -E 's/^(PASS|FAIL) ([^:]+)::.*/\1 \2/' |
        awk '{ if ($1 == "PASS") p[$2]++; else f[$2]++; seen[$2] = 1 }
             END { for (k in seen) printf "e2e %s: %d passed, %d failed\n",
                                          k, p[k] + 0, f[k] + 0 }' | sort
    set -- $summary
    passed=$((passed + $2))
    failed=$((failed + $4))
    if [ "$e2e_rc" -ne 0 ] && [ "$4" -eq 0 ]; then
        echo "e2e: run.py exited with status $e2e_rc"
        failed=$((failed + 1))
    fi
else
    echo "e2e: run.py ended (status $e2e_rc) without its summary line"
    failed=$((failed + 1))
fi

echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ] && [ "$passed" -gt 0 ]
