#!/bin/bash
# bench/run.sh: the SCEP benchmark. Measures, in one run on this machine:
#
#   (a) the RSA-2048 private-key bound: `openssl speed -multi NPROC rsa2048`
#       signatures per second divided by three (an enrollment needs three
#       private-key operations: open the request with the RA key, sign the
#       certificate with the CA key, sign the reply with the RA key)
#   (b) this suite: httpd (event MPM) + mod_ca + mod_ca_simple + mod_scep,
#       RSA-2048 CA and RA
#   (c) micromdm scepserver 2.1.0 (Debian package scep), 2048-bit CA
#   (d) a static file with the bytes of GetCACert / GetCACaps, served by
#       the same httpd
#
# Enrollments: PKCSReq, RSA-2048 client keys, AES-128-CBC, SHA-256, unique
# subjects, POST over keep-alive connections, pre-built by bench/scep-load;
# only HTTP 200 + pkiStatus SUCCESS counts; a sample of the answers is
# opened and the certificate verified against the CA. The three are
# measured in ROUNDS rounds, interleaved, and the ratios (b)/(a) and
# (b)/(c) are taken per round; the table shows the medians.
#
# Everything runs on 127.0.0.1. As root, the measurements run in a network
# namespace of their own (unshare -n) that has nothing but loopback, so
# that scepserver, which listens on all interfaces, cannot be reached from
# anywhere else.
#
# Environment (defaults in brackets):
#   ROUNDS [3]        rounds of (a) (b) (c)
#   N [8000]          enrollments per round against the suite
#   NM [2000]         enrollments per round against scepserver
#   C [16]            concurrent connections
#   SPEED_SECONDS [10]  length of each openssl speed run
#   GET_SECONDS [5]   length of each GetCACert / GetCACaps run
#   KEYS [256]        client keys in the cache (bench/cache, made once)
#   MEM [0]           if > 0: after the rounds, the memory check: RSS of the
#                     httpd children after 1,000 enrollments and after MEM
#   MEM_DISTINCT [20000]  distinct requests built for the memory check
#                     (cycled; mod_ca_simple does not mind repeats)
#   PROFILE [0]       if 1: perf record of the httpd children during one
#                     extra suite run (perf.data and a report in the work dir)
#   MODULES [the tree's .libs]  measure the modules in this directory instead
#   COMPARE [none]    a second directory of modules (e.g. a tree with a patch
#                     applied, its .libs), measured as (e) in every round right
#                     after (b), for a before/after comparison in one run
#   WORK [bench/work/run]  scratch directory (PKI, configs, logs, results)
#
# Output: a table on stdout; raw key=value results in $WORK/results/.

set -euo pipefail

prog=run.sh
top=$(cd "$(dirname "$0")/.." && pwd)
work=${WORK:-$top/bench/work/run}
. "$top/bench/lib.sh"

rounds=${ROUNDS:-3}
n_suite=${N:-8000}
n_mdm=${NM:-2000}
conc=${C:-16}
speed_s=${SPEED_SECONDS:-10}
get_s=${GET_SECONDS:-5}
keys=${KEYS:-256}
mem=${MEM:-0}
mem_distinct=${MEM_DISTINCT:-20000}
profile=${PROFILE:-0}
cores=$(nproc)
res=$work/results
load=$top/bench/scep-load

# ------------------------------------------------------------ outside
if [ -z "${BENCH_INSIDE:-}" ]; then
    [ "$(id -u)" -eq 0 ] || say "not root: no network namespace; scepserver will listen on all interfaces of this machine (only 127.0.0.1 is ever sent to)"
    missing=""
    for p in apache2 scep curl openssl; do
        dpkg -s "$p" >/dev/null 2>&1 || missing="$missing $p"
    done
    if [ -n "$missing" ]; then
        [ "$(id -u)" -eq 0 ] || die "missing packages:$missing"
        say "installing$missing"
        DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends $missing >/dev/null
    fi
    say "building"
    build_all
    rm -rf "$work"
    mkdir -p "$work" "$res"
    if [ -n "${MODULES:-}" ]; then
        # a tree to measure instead of this one (its .libs), e.g. a patch
        mkdir -p "$work/modules"
        for m in mod_ca mod_ca_simple mod_scep; do
            cp "$MODULES/$m.so" "$work/modules/" || die "no $MODULES/$m.so"
        done
        echo "modules=$MODULES" >"$work/modules/FROM"
    else
        snapshot_modules "$work/modules"
    fi
    if [ -n "${COMPARE:-}" ]; then
        mkdir -p "$work/modules-e"
        for m in mod_ca mod_ca_simple mod_scep; do
            cp "$COMPARE/$m.so" "$work/modules-e/" || die "no $COMPARE/$m.so"
        done
    fi
    say "making the PKIs (RSA 2048)"
    "$top/scripts/make-pki.sh" "$work/pki"
    scepserver ca -init -depot "$work/mdm-ca" -keySize 2048 \
        -organization "scep-bench" >/dev/null 2>&1 \
        || die "scepserver ca -init failed"
    "$load" keys --cache "$top/bench/cache" --count "$keys" >/dev/null

    # what was measured, for the record
    {
        machine_info
        echo "scepserver=$(dpkg-query -W -f '${Version}' scep 2>/dev/null)"
        [ -z "${COMPARE:-}" ] || echo "compare=$COMPARE"
    } >"$res/machine.txt"

    export BENCH_INSIDE=1 WORK="$work"
    if [ "$(id -u)" -eq 0 ] && unshare -n true 2>/dev/null; then
        exec unshare -n "$0" "$@"
    fi
    say "unshare -n is not available here: running in the host network namespace"
    exec "$0" "$@"
fi

# ------------------------------------------------------------- inside
ip link set lo up 2>/dev/null || true
[ -x "$load" ] || die "no $load"
mdm_pid=""

cleanup() {
    stop_httpd "$work/httpd" || true
    stop_httpd "$work/httpd-e" || true
    if [ -n "$mdm_pid" ]; then
        kill "$mdm_pid" 2>/dev/null || true
        wait "$mdm_pid" 2>/dev/null || true
    fi
}
trap cleanup EXIT

httpd_port=$(free_port 28500)
mdm_port=$(free_port 28600)
write_httpd_conf "$work/httpd" "$httpd_port" "$work/pki" "$work/modules"
compare=no
if [ -d "$work/modules-e" ]; then
    compare=yes
    write_httpd_conf "$work/httpd-e" "$httpd_port" "$work/pki" "$work/modules-e"
fi

start_suite() {
    start_httpd "$work/httpd" "$httpd_port"
    suite_pids="$(httpd_pid "$work/httpd") $(httpd_children "$work/httpd")"
}

start_mdm() {
    rm -rf "$work/mdm"
    mkdir -p "$work/mdm"
    cp -a "$work/mdm-ca" "$work/mdm/depot"
    # the only way 2.1.0 takes a port; it binds every interface (in here:
    # loopback only)
    scepserver -depot "$work/mdm/depot" -port "$mdm_port" \
        >"$work/mdm/server.log" 2>&1 &
    mdm_pid=$!
    for _ in $(seq 1 100); do
        curl -fsS -o /dev/null "http://127.0.0.1:$mdm_port/scep?operation=GetCACaps" 2>/dev/null && return 0
        sleep 0.1
    done
    die "scepserver does not answer on $mdm_port"
}

stop_mdm() {
    kill "$mdm_pid" 2>/dev/null || true
    wait "$mdm_pid" 2>/dev/null || true
    mdm_pid=""
}

speed() {   # speed OUT: RSA-2048 signatures/s over all cores, and of one
    # -elapsed: divided by wall-clock time, as the servers are measured (the
    # default, CPU time, does not see what other processes take)
    local multi single
    multi=$(openssl speed -elapsed -mr -multi "$cores" -seconds "$speed_s" rsa2048 2>/dev/null \
        | awk -F: '/^\+F2:/ {v = $4} END {print v}')
    # one process, CPU time: the cost of one signature and of one
    # verification (the public-key operation), for the CPU shares
    single=$(openssl speed -mr -seconds "$speed_s" rsa2048 2>/dev/null \
        | awk -F: '/^\+F2:/ {v = $4 " " $5} END {print v}')
    awk -v m="${multi:-0}" -v s="${single% *}" -v pub="${single#* }" 'BEGIN {
        printf "sign_per_s=%.0f\nbound_per_s=%.1f\n", m, m / 3
        if (s > 0) printf "sign_ms_one_core=%.4f\nrsa_ms_per_enroll=%.4f\n", 1000 / s, 3000 / s
        # verify the request, verify the CSR, encrypt the key of the reply
        if (pub > 0) printf "pub_ms_per_enroll=%.4f\n", 3000 / pub
    }' >"$1"
}

enroll() {  # enroll OUT PORT RA CA PIDS N TAG
    "$load" enroll --port "$2" --ra "$3" --ca "$4" --server-pids "$5" \
        --cache "$top/bench/cache" --keys "$keys" -n "$6" -c "$conc" \
        --warmup 200 --verify 200 --tag "$7" >"$1" 2>>"$res/load.log" || true
}

get() {     # get OUT PORT PATH [EXPECT-FILE [SERVER-PIDS]]
    "$load" get --port "$2" --path "$3" -d "$get_s" -c "$conc" \
        --warmup 2000 ${4:+--expect "$4"} ${5:+--server-pids "$5"} \
        >"$1" 2>>"$res/load.log" || true
}

start_suite
# the static copies: the very bytes the module answers
curl -fsS -o "$work/httpd/htdocs/static/getcacert.der" \
    "http://127.0.0.1:$httpd_port/scep?operation=GetCACert"
curl -fsS -o "$work/httpd/htdocs/static/getcacaps.txt" \
    "http://127.0.0.1:$httpd_port/scep?operation=GetCACaps"
stop_httpd "$work/httpd"

for r in $(seq 1 "$rounds"); do
    say "round $r/$rounds: (a) openssl speed -multi $cores rsa2048 (${speed_s}s)"
    speed "$res/a.$r"
    say "round $r/$rounds: (b) the suite, $n_suite enrollments at concurrency $conc"
    start_suite
    enroll "$res/b.$r" "$httpd_port" "$work/pki/ra.pem" "$work/pki/ca.pem" \
        "$suite_pids" "$n_suite" "suite-r$r"
    say "round $r/$rounds: (b)/(d) GetCACert and GetCACaps, module and static file"
    get "$res/getcacert-b.$r" "$httpd_port" "/scep?operation=GetCACert" \
        "$work/httpd/htdocs/static/getcacert.der" "$suite_pids"
    get "$res/getcacert-d.$r" "$httpd_port" "/static/getcacert.der" \
        "$work/httpd/htdocs/static/getcacert.der"
    get "$res/getcacaps-b.$r" "$httpd_port" "/scep?operation=GetCACaps" \
        "$work/httpd/htdocs/static/getcacaps.txt"
    get "$res/getcacaps-d.$r" "$httpd_port" "/static/getcacaps.txt" \
        "$work/httpd/htdocs/static/getcacaps.txt"
    crash_lines "$work/httpd" >"$res/crashes-b.$r"
    stop_httpd "$work/httpd"
    if [ "$compare" = yes ]; then
        say "round $r/$rounds: (e) the suite with the modules of $COMPARE"
        start_httpd "$work/httpd-e" "$httpd_port"
        enroll "$res/e.$r" "$httpd_port" "$work/pki/ra.pem" "$work/pki/ca.pem" \
            "$(httpd_pid "$work/httpd-e") $(httpd_children "$work/httpd-e")" \
            "$n_suite" "compare-r$r"
        crash_lines "$work/httpd-e" >"$res/crashes-e.$r"
        stop_httpd "$work/httpd-e"
    fi
    say "round $r/$rounds: (c) scepserver, $n_mdm enrollments at concurrency $conc"
    start_mdm
    enroll "$res/c.$r" "$mdm_port" "$work/mdm/depot/ca.pem" \
        "$work/mdm/depot/ca.pem" "$mdm_pid" "$n_mdm" "mdm-r$r"
    get "$res/getcacert-c.$r" "$mdm_port" "/scep?operation=GetCACert"
    get "$res/getcacaps-c.$r" "$mdm_port" "/scep?operation=GetCACaps"
    stop_mdm
done

# ---------------------------------------------------------------- profile
if [ "$profile" = 1 ] && command -v perf >/dev/null 2>&1; then
    say "profile: perf record of the httpd children during $n_suite enrollments"
    start_suite
    pids=$(httpd_children "$work/httpd" | tr -s ' ' ',' | sed 's/^,//; s/,$//')
    perf record -e cpu-clock -F 499 --call-graph dwarf,16384 -p "$pids" \
        -o "$work/perf.data" >/dev/null 2>&1 &
    perf_pid=$!
    sleep 1
    enroll "$res/profile" "$httpd_port" "$work/pki/ra.pem" "$work/pki/ca.pem" \
        "$suite_pids" "$n_suite" "profile"
    kill -INT "$perf_pid" 2>/dev/null || true
    wait "$perf_pid" 2>/dev/null || true
    perf report -i "$work/perf.data" --children --sort sym -g none 2>/dev/null \
        | grep -v '^#' | grep -v '^$' | head -120 >"$res/profile-children.txt" || true
    perf report -i "$work/perf.data" --no-children --sort dso,sym -g none 2>/dev/null \
        | grep -v '^#' | grep -v '^$' | head -60 >"$res/profile-self.txt" || true
    stop_httpd "$work/httpd"
fi

# ----------------------------------------------------------------- memory
if [ "$mem" -gt 1000 ]; then
    say "memory: RSS of the httpd children after 1,000 ... $mem enrollments"
    start_suite
    : >"$res/mem"
    done_n=0
    steps="1000"
    [ "$mem" -gt 20000 ] && steps="$steps 10000"
    [ "$mem" -gt 4000 ] && steps="$steps $((mem / 2))"
    steps="$steps $mem"
    for step in $steps; do
        "$load" enroll --port "$httpd_port" --ra "$work/pki/ra.pem" \
            --ca "$work/pki/ca.pem" --cache "$top/bench/cache" --keys "$keys" \
            -n $((step - done_n)) --distinct "$mem_distinct" -c "$conc" \
            --verify 20 --tag "mem-$step" >"$res/mem-$step" 2>>"$res/load.log" || true
        done_n=$step
        echo "rss_kib_after_$step=$(children_rss "$work/httpd") $(ps -o pid=,rss= -p "$(httpd_children "$work/httpd" | tr -s ' ' ',' | sed 's/^,//; s/,$//')" | awk '{printf "%s:%s ", $1, $2}')" >>"$res/mem"
        echo "errors_$step=$(value errors "$res/mem-$step")" >>"$res/mem"
    done
    crash_lines "$work/httpd" >"$res/crashes-mem"
    stop_httpd "$work/httpd"
fi

echo "loadavg_after=$(cut -d' ' -f1-3 /proc/loadavg)" >>"$res/machine.txt"

# ----------------------------------------------------------------- report
# The best (b)/(a) any httpd module could reach on this machine: a server
# doing nothing but the three private-key operations, the three public-key
# ones SCEP requires and one HTTP exchange as cheap as GetCACert's, sharing
# the cores with the load generator as (b) does.
ceiling_col() {
    local r rsa pub http client
    for r in $(seq 1 "$rounds"); do
        rsa=$(value rsa_ms_per_enroll "$res/a.$r")
        pub=$(value pub_ms_per_enroll "$res/a.$r")
        http=$(value server_cpu_ms_per_req "$res/getcacert-b.$r")
        client=$(value client_cpu_share "$res/b.$r")
        awk -v a="${rsa:-0}" -v p="${pub:-0}" -v h="${http:-0}" -v c="${client:-0}" \
            'BEGIN {if (a > 0 && h > 0) printf "%.3f\n", a / (a + p + h) * (1 - c)}'
    done
}

{
    echo "# SCEP benchmark ($(value date "$res/machine.txt"))"
    echo
    echo "machine: $(value nproc "$res/machine.txt") x $(value cpu "$res/machine.txt") ($(value hypervisor "$res/machine.txt")), $(value mem "$res/machine.txt"), kernel $(value kernel "$res/machine.txt")"
    echo "software: $(value openssl "$res/machine.txt"); $(value httpd "$res/machine.txt"); scepserver $(value scepserver "$res/machine.txt"); tree $(value git "$res/machine.txt")"
    echo "load average before/after: $(value loadavg_before "$res/machine.txt") / $(value loadavg_after "$res/machine.txt")"
    [ -z "$(value modules "$res/machine.txt")" ] || echo "modules measured: $(value modules "$res/machine.txt")"
    echo "command: ROUNDS=$rounds N=$n_suite NM=$n_mdm C=$conc SPEED_SECONDS=$speed_s GET_SECONDS=$get_s KEYS=$keys MEM=$mem bench/run.sh"
    echo
    printf '%-44s %12s   %s\n' "figure" "median" "per round"
    printf '%-44s %12s   %s\n' "------" "------" "---------"
    row() {     # row LABEL VALUES...
        local label=$1
        shift
        printf '%-44s %12s   %s\n' "$label" "$(printf '%s\n' "$@" | median)" "$(printf '%s\n' "$@" | list)"
    }
    row "(a) openssl speed rsa2048 sign/s ($cores cores)" $(col sign_per_s a)
    row "(a) RSA bound, enrollments/s (sign/s / 3)" $(col bound_per_s a)
    row "(b) suite enrollments/s" $(col enroll_per_s b)
    row "(c) scepserver enrollments/s" $(col enroll_per_s c)
    row "(b)/(a)  [target >= 0.8]" $(ratio_col enroll_per_s b bound_per_s a)
    row "(b)/(c)  [target >= 3]" $(ratio_col enroll_per_s b enroll_per_s c)
    row "(b) latency p50 ms" $(col lat_p50_ms b)
    row "(b) latency p99 ms" $(col lat_p99_ms b)
    row "(c) latency p50 ms" $(col lat_p50_ms c)
    row "(c) latency p99 ms" $(col lat_p99_ms c)
    row "(a) one RSA-2048 signature, ms of one core" $(col sign_ms_one_core a)
    row "(b) server CPU ms per enrollment" $(col server_cpu_ms_per_enroll b)
    row "(c) server CPU ms per enrollment" $(col server_cpu_ms_per_enroll c)
    row "(b) RSA share of its CPU (3 signatures)" $(ratio_col rsa_ms_per_enroll a server_cpu_ms_per_enroll b)
    row "(b) load generator share of the machine" $(col client_cpu_share b)
    row "(a) three public-key operations, ms" $(col pub_ms_per_enroll a)
    row "(b) server CPU ms per GetCACert" $(col server_cpu_ms_per_req getcacert-b)
    row "ceiling of (b)/(a): RSA + public + HTTP only" $(ceiling_col)
    if [ "$compare" = yes ]; then
        row "(e) suite, compared modules, enrollments/s" $(col enroll_per_s e)
        row "(e)/(a)" $(ratio_col enroll_per_s e bound_per_s a)
        row "(e)/(c)" $(ratio_col enroll_per_s e enroll_per_s c)
        row "(e)/(b)" $(ratio_col enroll_per_s e enroll_per_s b)
        row "(e) server CPU ms per enrollment" $(col server_cpu_ms_per_enroll e)
        row "(e) RSA share of its CPU" $(ratio_col rsa_ms_per_enroll a server_cpu_ms_per_enroll e)
        row "(e) latency p50 ms" $(col lat_p50_ms e)
        row "(e) latency p99 ms" $(col lat_p99_ms e)
    fi
    row "(b) GetCACert req/s" $(col rps getcacert-b)
    row "(d) static GetCACert bytes req/s" $(col rps getcacert-d)
    row "(c) scepserver GetCACert req/s" $(col rps getcacert-c)
    row "(b)/(d) GetCACert  [target >= 0.9]" $(ratio_col rps getcacert-b rps getcacert-d)
    row "(b)/(c) GetCACert" $(ratio_col rps getcacert-b rps getcacert-c)
    row "(b) GetCACaps req/s" $(col rps getcacaps-b)
    row "(d) static GetCACaps bytes req/s" $(col rps getcacaps-d)
    row "(c) scepserver GetCACaps req/s" $(col rps getcacaps-c)
    row "(b)/(d) GetCACaps" $(ratio_col rps getcacaps-b rps getcacaps-d)
    row "(b)/(c) GetCACaps" $(ratio_col rps getcacaps-b rps getcacaps-c)
    echo
    [ "$compare" = no ] || echo "compared modules (e): $(value compare "$res/machine.txt"); errors $(sum_col errors e) of $((rounds * n_suite)), verify failures $(sum_col verify_failed e)"
    echo "errors (all rounds): suite $(sum_col errors b) of $((rounds * n_suite)) (5xx $(sum_col http_5xx b), verify failures $(sum_col verify_failed b)); scepserver $(sum_col errors c) of $((rounds * n_mdm)) (CertRep FAILURE $(sum_col scep_failure c), 5xx $(sum_col http_5xx c))"
    echo "verified in full (signature, RA, nonce, envelope, key, CN, chain): suite $(sum_col verified b), scepserver $(sum_col verified c)"
    echo "reply ciphers: suite $(value reply_cipher "$res/b.1"), scepserver $(value reply_cipher "$res/c.1")"
    echo "crashed httpd children: $(cat "$res"/crashes-* 2>/dev/null | wc -l)"
    if [ -f "$res/mem" ]; then
        echo
        echo "memory: resident KiB of the httpd children after N enrollments"
        echo "(sum, largest, then pid:KiB of each; errors of each step)"
        sed 's/^/  /' "$res/mem"
    fi
    if [ -f "$res/profile-children.txt" ]; then
        echo
        echo "profile: $res/profile-children.txt and profile-self.txt"
    fi
} | tee "$res/summary.txt"
