#!/usr/bin/env bash
# Build and run every test: the unit-test binaries, then the integration tests
# (real swarmd processes on 127.0.0.N driven by swarmctl and by a Python gRPC
# client). Prints one line per test and ends with "N passed, N failed".
#
#   tests/run.sh                 # everything
#   BUILD_DIR=build-asan SANITIZE=1 tests/run.sh
#   tests/run.sh -k restart      # extra args go to pytest
set -u
cd "$(dirname "$0")/.."
ROOT=$PWD
BUILD_DIR=${BUILD_DIR:-build}

if [ ! -f "$BUILD_DIR/build.ninja" ]; then
    opts=()
    if [ "${SANITIZE:-0}" = 1 ]; then
        opts+=(-Db_sanitize=address,undefined -Db_lundef=false)
    fi
    meson setup "$BUILD_DIR" "${opts[@]}" >/dev/null || { echo "meson setup failed"; echo "0 passed, 1 failed"; exit 1; }
fi
if ! ninja -C "$BUILD_DIR" >"$BUILD_DIR/ninja.log" 2>&1; then
    tail -40 "$BUILD_DIR/ninja.log"
    echo "build failed"
    echo "0 passed, 1 failed"
    exit 1
fi

passed=0
failed=0
skipped=0
unit_failures=""

# Unit tests: each binary prints PASS/FAIL lines and its own summary (each
# case runs in its own child process, several at once: tests/unit/test.h).
# The binaries run concurrently (most of their time is spent waiting on
# timers); their results are printed in name order once all are done.
unit_out="$BUILD_DIR/unit-out"
rm -rf "$unit_out" && mkdir -p "$unit_out"
for t in "$BUILD_DIR"/tests/unit/test_*; do
    [ -x "$t" ] && [ -f "$t" ] || continue
    n=$(basename "$t")
    ( "$t" >"$unit_out/$n.out" 2>&1; echo $? >"$unit_out/$n.rc" ) &
done
wait
for t in "$BUILD_DIR"/tests/unit/test_*; do
    [ -x "$t" ] && [ -f "$t" ] || continue
    out=$(cat "$unit_out/$(basename "$t").out")
    rc=$(cat "$unit_out/$(basename "$t").rc")
    echo "$out" | grep -E '^(PASS|FAIL) ' | sed "s|^|$(basename "$t"): |"
    p=$(echo "$out" | grep -c '^PASS ')
    f=$(echo "$out" | grep -c '^FAIL ')
    if [ "$f" -gt 0 ]; then
        unit_failures+=$(echo "$out" | grep '^FAIL ' | sed "s|^|$(basename "$t"): |")$'\n'
    fi
    if [ $rc -ne 0 ] && [ "$f" -eq 0 ]; then
        # Crashed before reporting: count the binary as one failure.
        echo "$(basename "$t"): FAIL (exit $rc)"
        echo "$out" | tail -20
        unit_failures+="$(basename "$t"): FAIL (exit $rc)"$'\n'
        unit_failures+=$(echo "$out" | tail -20)$'\n'
        f=1
    fi
    passed=$((passed + p))
    failed=$((failed + f))
done

# Integration tests (pytest from Debian, run by Debian's interpreter).
junit="$BUILD_DIR/integration-junit.xml"
rm -f "$junit"
SWARM_BUILD_DIR="$ROOT/$BUILD_DIR" /usr/bin/python3 -m pytest -p no:cacheprovider -rfEs \
    --junitxml="$junit" tests/integration "$@" 2>&1 | grep -vE '^(platform|rootdir|plugins|cachedir)'
if [ -f "$junit" ]; then
    read -r t f e s < <(/usr/bin/python3 - "$junit" <<'PY'
import sys, xml.etree.ElementTree as ET
r = ET.parse(sys.argv[1]).getroot()
suites = [r] if r.tag == "testsuite" else list(r)
tot = [0, 0, 0, 0]
for s in suites:
    for i, k in enumerate(("tests", "failures", "errors", "skipped")):
        tot[i] += int(s.get(k, 0))
print(*tot)
PY
)
    passed=$((passed + t - f - e - s))
    failed=$((failed + f + e))
    skipped=$((skipped + s))
else
    echo "integration tests did not run"
    failed=$((failed + 1))
fi

# Repeat the unit failures here, next to the summary, so that a log cut to
# its last lines still names them (pytest's -r summary names its own).
if [ -n "$unit_failures" ]; then
    echo "unit test failures (repeated from above):"
    printf '%s' "$unit_failures"
fi

if [ "$skipped" -gt 0 ]; then
    echo "$passed passed, $failed failed, $skipped skipped"
else
    echo "$passed passed, $failed failed"
fi
[ "$failed" -eq 0 ]
