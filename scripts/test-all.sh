#!/bin/bash
# test-all.sh [STAGE...]: build and test everything, from a fresh clone.
#
# Stages, run in this order:
#   deps    install missing Debian packages with .ci/install (root only)
#   build   ./autogen.sh && ./configure && make (each step only when needed)
#   unit    make check: the C unit tests in test/unit
#   apache  the Apache::Test suite in t/ against the modules in .libs
#   asan    a copy of the tree in build-asan/ built with
#           --enable-sanitizers (ASan + UBSan); its unit tests, then the
#           Apache::Test suite with those modules and httpd wrapped by
#           scripts/asan-httpd; any sanitizer report fails the stage
#   fuzz    make fuzz, then every target test/fuzz/fuzz_NAME for
#           FUZZ_SECONDS each (default 60) on test/fuzz/corpus/NAME (with
#           test/fuzz/NAME.dict when there is one); any crash fails the
#           stage
#   soak    bench/soak.sh --quick: 8,000 mixed requests (valid and every
#           bad-input class); no 5xx, no crashed child, no memory growth
#   memcheck
#           scripts/memcheck.sh: httpd -X under valgrind memcheck, 50 and
#           then 250 mixed requests; no memory error, nothing definitely
#           lost, no leak that grows with the requests (about 2 minutes)
#
# Arguments: stage names, or "all" (the default: every stage) or "quick"
# (build unit apache). Prints one line per stage and, last, a line
# "N passed, N failed"; exits non-zero when any stage failed.
#
# Environment: APXS (default: apxs on PATH), FUZZ_SECONDS (per target),
# JOBS (make -j), SCEP_TEST_TIMEOUT (seconds per Apache::Test run, default
# 1200), APACHE_TEST_PORT (default "select": the first free port from 8529).

set -u
set -o pipefail

top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top" || exit 1

all_stages="deps build unit apache asan fuzz soak memcheck"
quick_stages="build unit apache"

stages=""
[ $# -eq 0 ] && set -- all
for a in "$@"; do
    case "$a" in
    all)   stages="$stages $all_stages" ;;
    quick) stages="$stages $quick_stages" ;;
    deps|build|unit|apache|asan|fuzz|soak|memcheck) stages="$stages $a" ;;
    -h|--help|help)
        sed -n '2,/^$/{s/^# \{0,1\}//;p}' "$0"
        exit 0 ;;
    *)  echo "test-all: unknown stage '$a' (all quick $all_stages)" >&2
        exit 2 ;;
    esac
done

want() {
    case " $stages " in *" $1 "*) return 0 ;; esac
    return 1
}

jobs=${JOBS:-$(nproc 2>/dev/null || echo 2)}
# a free port from 8529 up, so that two runs on one machine do not collide
# (the -port option: as an environment variable, "select" would be
# redone, differently, by every test script)
at_port=${APACHE_TEST_PORT:-select}
fuzz_seconds=${FUZZ_SECONDS:-60}
at_timeout=${SCEP_TEST_TIMEOUT:-1200}

lsan_options="suppressions=$top/scripts/lsan.supp:print_suppressions=0${LSAN_OPTIONS:+:$LSAN_OPTIONS}"

passed=0
failed=0
results=()

banner() {
    echo
    echo "=== test-all: $* ($(date '+%H:%M:%S'))"
}

record() {   # record STAGE pass|fail|skip [note]
    local what=$2
    results+=("$(printf '%-7s %-5s %s' "$1" "$what" "${3:-}")")
    case "$what" in
    pass) passed=$((passed + 1)) ;;
    fail) failed=$((failed + 1)) ;;
    esac
}

finish() {
    echo
    echo "=== test-all: summary"
    local r
    for r in "${results[@]}"; do
        echo "  $r"
    done
    echo "$passed passed, $failed failed"
    [ "$failed" -eq 0 ]
    exit $?
}

find_apxs() {
    if [ -n "${APXS:-}" ]; then
        echo "$APXS"
        return
    fi
    command -v apxs || command -v apxs2 || echo /usr/bin/apxs
}

# build_tree DIR [CONFIGURE-ARG...]: autogen, configure and make in DIR;
# each step only when needed (make reruns autotools by itself)
build_tree() {
    local dir=$1
    shift
    (
        cd "$dir" || exit 1
        if [ ! -x configure ]; then
            ./autogen.sh || exit 1
        fi
        local reconf=no a
        [ -f Makefile ] && [ -f config.status ] || reconf=yes
        if [ "$reconf" = no ]; then
            for a in "$@"; do
                ./config.status --config | grep -q -- "'$a'" || reconf=yes
            done
        fi
        if [ "$reconf" = yes ]; then
            ./configure ${APXS:+--with-apxs="$APXS"} "$@" || exit 1
        fi
        make -j"$jobs" || exit 1
    )
}

# t/TEST, generated from t/TEST.PL by Apache::TestMM like a Makefile.PL would
generate_t_test() {
    if [ ! -x t/TEST ] || [ t/TEST.PL -nt t/TEST ]; then
        perl -MApache::TestMM -e \
            'Apache::TestMM::filter_args(); Apache::TestMM::generate_script("t/TEST")' \
            -- -apxs "$(find_apxs)" >/dev/null || return 1
    fi
}

# run_apache_test LABEL: runs t/TEST with the current environment; fails on
# test failures and on crashed httpd children
run_apache_test() {
    generate_t_test || return 1
    rm -f t/logs/error_log
    local rc=0
    timeout -k 10 "$at_timeout" env -u APACHE_TEST_PORT \
        t/TEST -apxs "$(find_apxs)" -port "$at_port" || rc=$?
    # stop a server left behind by a timeout or an interrupted run
    t/TEST -stop >/dev/null 2>&1 || true
    if [ -f t/logs/error_log ] \
       && grep -E 'AH0005[12]' t/logs/error_log | head -5 | grep .; then
        echo "test-all: an httpd child crashed (t/logs/error_log)" >&2
        rc=1
    fi
    return $rc
}

# ---------------------------------------------------------------- deps
if want deps; then
    banner "deps"
    if [ "$(id -u)" -eq 0 ]; then
        if bash .ci/install; then
            record deps pass
        else
            record deps fail ".ci/install failed"
            finish
        fi
    else
        missing=""
        for c in apxs autoreconf libtoolize pkg-config make gcc openssl \
                 scepclient valgrind; do
            command -v "$c" >/dev/null 2>&1 || missing="$missing $c"
        done
        perl -MApache::Test -e1 2>/dev/null || missing="$missing Apache::Test"
        if [ -n "$missing" ]; then
            echo "test-all: missing:$missing; run 'sudo .ci/install'" >&2
            record deps fail "missing:$missing"
            finish
        fi
        record deps skip "not root: checked, nothing installed"
    fi
fi

# ---------------------------------------------------------------- build
built=yes
if want build; then
    banner "build"
    if build_tree "$top"; then
        record build pass
    else
        record build fail
        built=no
    fi
fi

if [ "$built" = no ]; then
    for s in unit apache asan fuzz soak memcheck; do
        want "$s" && record "$s" skip "build failed"
    done
    finish
fi

# ---------------------------------------------------------------- unit
if want unit; then
    banner "unit"
    if [ ! -d test/unit ]; then
        record unit skip "no test/unit"
    elif make -j"$jobs" check; then
        record unit pass
    else
        for f in test/unit/*.log; do
            [ -f "$f" ] && cat "$f"
        done
        record unit fail
    fi
fi

# ---------------------------------------------------------------- apache
if want apache; then
    banner "apache: Apache::Test suite"
    if (unset SCEP_MODULES_DIR SCEP_HTTPD_WRAPPER; run_apache_test); then
        record apache pass
    else
        record apache fail "see t/logs/error_log"
    fi
fi

# ---------------------------------------------------------------- asan
# A VPATH build (build-asan/ + ../configure) is refused by automake once the
# source tree itself is configured, and make would pick up the in-tree
# objects through VPATH anyway; so build-asan/ is a copy of the sources
# (what git tracks or would track), built in place.
copy_tree() {
    local dest=$1
    mkdir -p "$dest"
    # Without AC_CONFIG_AUX_DIR, automake and configure look for install-sh
    # in ., .. and ../..: a copy inside the configured tree would use the
    # parent's aux files (and write into it). A placeholder here keeps them
    # in the copy; autoreconf -fi replaces it with the real one.
    if [ ! -s "$dest/install-sh" ]; then
        : > "$dest/install-sh"
        chmod +x "$dest/install-sh"
        rm -f "$dest/configure"
    fi
    mkdir -p "$dest/m4"
    if git -C "$top" rev-parse --git-dir >/dev/null 2>&1; then
        git -C "$top" ls-files -z --cached --others --exclude-standard \
            | while IFS= read -r -d '' f; do
                  [ -f "$f" ] && printf '%s\0' "$f"
              done \
            | tar --null -T - -cf - \
            | tar -C "$dest" -xf -
    else
        tar --exclude=./build-asan --exclude=./demo --exclude=./.git \
            --exclude=./t/logs -cf - . | tar -C "$dest" -xf -
        if [ -f "$dest/Makefile" ]; then
            make -C "$dest" distclean >/dev/null 2>&1 || true
        fi
    fi
}

if want asan; then
    banner "asan: sanitizer build in build-asan/"
    asan_dir=$top/build-asan
    san_logs=$asan_dir/sanitizer-logs
    ok=yes
    note=""
    built_asan=no
    if ! copy_tree "$asan_dir"; then
        ok=no; note="copying the tree failed"
    elif ! build_tree "$asan_dir" --enable-sanitizers; then
        ok=no; note="sanitizer build failed"
    else
        built_asan=yes
    fi

    if [ "$built_asan" = yes ] && [ -d "$asan_dir/test/unit" ]; then
        banner "asan: unit tests"
        # leak checking on, full malloc stacks so that the suppressions
        # (scripts/lsan.supp) can match
        if ! ASAN_OPTIONS=fast_unwind_on_malloc=0${ASAN_OPTIONS:+:$ASAN_OPTIONS} \
             LSAN_OPTIONS=$lsan_options \
             make -C "$asan_dir" -j"$jobs" check; then
            for f in "$asan_dir"/test/unit/*.log; do
                [ -f "$f" ] && cat "$f"
            done
            ok=no; note="unit tests failed;"
        fi
    fi

    if [ "$built_asan" = yes ]; then
        banner "asan: Apache::Test suite with sanitized modules"
        rm -rf "$san_logs"
        mkdir -p "$san_logs"
        chmod 1777 "$san_logs"
        if ! (export SCEP_MODULES_DIR=$asan_dir/.libs \
                     SCEP_HTTPD_WRAPPER=$top/scripts/asan-httpd \
                     SCEP_SAN_LOG_DIR=$san_logs
              run_apache_test); then
            ok=no; note="$note Apache::Test suite failed;"
        fi
        reports=$(find "$san_logs" -type f 2>/dev/null)
        if [ -n "$reports" ]; then
            for f in $reports; do
                echo "--- $f"
                head -60 "$f"
            done
            ok=no; note="$note sanitizer reports in $san_logs;"
        fi
        if [ -f t/logs/error_log ] \
           && grep -n -E 'runtime error|AddressSanitizer|LeakSanitizer' \
                   t/logs/error_log | head -20 | grep .; then
            ok=no; note="$note sanitizer errors in t/logs/error_log;"
        fi
    fi

    if [ "$ok" = yes ]; then
        record asan pass
    else
        record asan fail "$note"
    fi
fi

# ---------------------------------------------------------------- fuzz
# every libFuzzer target of test/fuzz (fuzz_NAME.c, seeds in corpus/NAME,
# a dictionary in NAME.dict when there is one), each for FUZZ_SECONDS
fuzz_targets() {
    local f name
    for f in test/fuzz/fuzz_*.c; do
        name=${f#test/fuzz/fuzz_}
        name=${name%.c}
        [ "$name" = common ] || [ "$name" = '*' ] || echo "$name"
    done
}

if want fuzz; then
    banner "fuzz"
    targets=$(fuzz_targets)
    if [ -z "$targets" ] || ! grep -q '^fuzz:' Makefile; then
        record fuzz skip "no fuzz target yet"
    elif ! make fuzz; then
        record fuzz fail "make fuzz failed"
    else
        fuzz_out=$(mktemp -d "${TMPDIR:-/tmp}/scep-fuzz.XXXXXX")
        crashed=""
        for t in $targets; do
            banner "fuzz: fuzz_$t, ${fuzz_seconds}s"
            mkdir -p "$fuzz_out/$t/corpus" "$fuzz_out/$t/artifacts"
            corpus=""
            [ -d "test/fuzz/corpus/$t" ] && corpus=test/fuzz/corpus/$t
            dict=""
            [ -f "test/fuzz/$t.dict" ] && dict=-dict=test/fuzz/$t.dict
            # new inputs go to the scratch corpus (the first directory),
            # not into the committed one; crashes go to the artifacts
            # directory.  No fast_unwind_on_malloc=0 here: full malloc
            # stacks cut libFuzzer's speed 25 to 130 times
            if ! LSAN_OPTIONS=$lsan_options \
                 "test/fuzz/fuzz_$t" -max_total_time="$fuzz_seconds" \
                     -artifact_prefix="$fuzz_out/$t/artifacts/" \
                     -print_final_stats=1 $dict \
                     "$fuzz_out/$t/corpus" $corpus; then
                ls -l "$fuzz_out/$t/artifacts"
                crashed="$crashed $t"
            fi
        done
        if [ -z "$crashed" ]; then
            record fuzz pass "$(echo $targets | wc -w) targets, ${fuzz_seconds}s each"
            rm -rf "$fuzz_out"
        else
            record fuzz fail "crashed:$crashed; artifacts in $fuzz_out"
        fi
    fi
fi

if want soak; then
    banner "soak: bench/soak.sh --quick"
    if bench/soak.sh --quick; then
        record soak pass
    else
        record soak fail "see bench/work/soak/httpd/logs"
    fi
fi

if want memcheck; then
    banner "memcheck: scripts/memcheck.sh"
    if ! command -v valgrind >/dev/null 2>&1; then
        record memcheck fail "valgrind is not installed (.ci/install)"
    elif scripts/memcheck.sh; then
        record memcheck pass
    else
        record memcheck fail "see build-memcheck/"
    fi
fi

finish
