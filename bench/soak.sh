#!/bin/bash
# bench/soak.sh [--quick]: the hardening soak. One httpd (event MPM) with the
# suite is sent N mixed requests at concurrency C by bench/scep-load soak:
# valid enrollments (POST, GET, chunked, DES, 3DES, AES-256/SHA-512, SHA-1,
# RenewalReq and renewal by PKCSReq), polls and GetCert, GetCRL, every class
# of bad input the module must refuse (bad signatures, bad CSR signature,
# wrong recipient, not a CSR, no content, MD5, unknown messageType,
# self-signed RenewalReq, foreign signer, garbage envelope, no
# transactionID, garbage, empty, truncated and trailing-garbage bodies, a
# body over ScepSize, bad base64, missing message, unknown and missing
# operation, PUT, DELETE, a certificates-only PKCS#7, a client that hangs
# up mid-body) and GetCACert, GetCACaps, GetNextCACert, OPTIONS, HEAD.
#
# It passes when: no 5xx; every answer is the one its class expects (HTTP
# status; for pkiMessages a CertRep signed by the RA, with the right
# transactionID, recipientNonce, pkiStatus and failInfo; a sample of the
# issued certificates opened and verified against the CA); no connection
# error or timeout; no crashed child in the error log; the same children
# from start to end; and the resident size of no httpd child grew by more
# than RSS_LIMIT_KIB over the last 45% of the run (the first 10% warm up,
# the middle 45% is shown for comparison: a leak grows both alike).
#
#   bench/soak.sh            N=100000 C=64 (a few minutes on 2 cores)
#   bench/soak.sh --quick    N=8000 C=32, 24 client keys (made once, 4 s)
#                            (for CI: well under a minute once built)
#
# Environment: N, C, KEYS (client keys in bench/cache), RSS_LIMIT_KIB
# (default 4096 per child, 8192 with --quick), MODULES (measure the modules in this directory
# instead of the tree's .libs), WORK (default bench/work/soak).
# Prints a table per request class and a last line "soak: PASS" or
# "soak: FAIL (...)"; exits 0 only on PASS.

set -euo pipefail

prog=soak.sh
top=$(cd "$(dirname "$0")/.." && pwd)
work=${WORK:-$top/bench/work/soak}
. "$top/bench/lib.sh"

quick=no
[ "${1:-}" = --quick ] && quick=yes
if [ "$quick" = yes ]; then
    n=${N:-8000}
    conc=${C:-32}
    keys=${KEYS:-24}
else
    n=${N:-100000}
    conc=${C:-64}
    keys=${KEYS:-256}
fi
# a short run has not always finished warming up: a looser limit for it
if [ "$quick" = yes ]; then
    rss_limit=${RSS_LIMIT_KIB:-8192}
else
    rss_limit=${RSS_LIMIT_KIB:-4096}
fi
# three parts: a tenth to warm up (threads, pools, arenas reach their
# working size), then two equal halves of the rest; a leak grows the last
# part as much as the middle one, warm-up does not
first=$((n / 10))
mid=$(((n - first) / 2))
last=$((n - first - mid))

build_all
rm -rf "$work"
mkdir -p "$work"
if [ -n "${MODULES:-}" ]; then
    mkdir -p "$work/modules"
    for m in mod_ca mod_ca_simple mod_scep; do
        cp "$MODULES/$m.so" "$work/modules/" || die "no $MODULES/$m.so"
    done
else
    snapshot_modules "$work/modules"
fi
"$top/scripts/make-pki.sh" "$work/pki"
"$load" keys --cache "$top/bench/cache" --count "$keys" >/dev/null

port=$(free_port 28800)
write_httpd_conf "$work/httpd" "$port" "$work/pki" "$work/modules" "\
    ScepRANextCertificate \"$work/pki/nextra.pem\"
    CASimpleNextCertificate \"$work/pki/nextca.pem\"
    ScepCRLURL http://127.0.0.1/ca.crl"
trap 'stop_httpd "$work/httpd"' EXIT
start_httpd "$work/httpd" "$port"

soak() {    # soak OUT N SEED
    local rc=0
    "$load" soak --port "$port" --ra "$work/pki/ra.pem" \
        --ca "$work/pki/ca.pem" --ca-key "$work/pki/ca.key" \
        --cache "$top/bench/cache" --keys "$keys" -n "$2" -c "$conc" \
        --seed "$3" --verify 200 --timeout 120 >"$1" 2>>"$work/load.log" || rc=$?
    return $rc
}

rss_of() {  # "pid=KiB ..." of the children
    ps -o pid=,rss= -p "$(httpd_children "$work/httpd" | tr -s ' ' ',' | sed 's/^,//; s/,$//')" \
        | awk '{printf "%s=%s ", $1, $2}'
}

say "soak: $n requests at concurrency $conc ($first + $mid + $last), httpd on 127.0.0.1:$port"
rc=0
t0=$(date +%s)
soak "$work/part1" "$first" 1 || rc=$?
rss1=$(rss_of)
soak "$work/part2" "$mid" 2 || rc=$?
rss2=$(rss_of)
soak "$work/part3" "$last" 3 || rc=$?
rss3=$(rss_of)
t1=$(date +%s)
children_after=$(httpd_children "$work/httpd")
crashes=$(crash_lines "$work/httpd")
stop_httpd "$work/httpd"
trap - EXIT

# ------------------------------------------------------------------ report
fail=""
sum() {     # sum KEY: over the parts
    echo $(( $(value "$1" "$work/part1") + $(value "$1" "$work/part2") + $(value "$1" "$work/part3") ))
}
echo "soak: $n requests ($(sum http_2xx) 2xx, $(sum http_3xx) 3xx, $(sum http_4xx) 4xx, $(sum http_5xx) 5xx, $(sum aborted_on_purpose) hung up on purpose) at concurrency $conc in $((t1 - t0)) s"
echo "soak: requests/s $(value rps "$work/part1"), $(value rps "$work/part2"), $(value rps "$work/part3"); latency p99 $(value lat_p99_ms "$work/part3") ms, max $(value lat_max_ms "$work/part3") ms (last part)"
echo "soak: certificates verified in full: $(sum verified), failed: $(sum verify_failed)"
echo "soak: per class (all parts):"
cat "$work/part1" "$work/part2" "$work/part3" | grep '^class ' \
    | awk '{
        split($3, a, "="); split($4, b, "="); split($5, c, "="); split($6, d, "=");
        if (!($2 in seen)) { seen[$2] = 1; order[++n] = $2 }
        s[$2] += a[2]; g[$2] += b[2]; u[$2] += c[2]; f[$2] += d[2]
    } END {
        for (i = 1; i <= n; i++) {
            k = order[i]
            printf "  %-24s sent %6d  as expected %6d  unexpected %4d  5xx %d\n", k, s[k], g[k], u[k], f[k]
        }
    }'
grep -h '^class .*first:' "$work/part1" "$work/part2" "$work/part3" | sed 's/^class /  first unexpected: /' || true

[ "$(sum http_5xx)" -eq 0 ] || fail="$fail 5xx;"
[ "$(sum unexpected)" -eq 0 ] || fail="$fail unexpected answers;"
[ "$(sum conn_errors)" -eq 0 ] || fail="$fail connection errors;"
[ "$(sum timeouts)" -eq 0 ] || fail="$fail timeouts;"
[ "$(sum bad_http)" -eq 0 ] || fail="$fail unparseable HTTP;"
[ "$(sum verify_failed)" -eq 0 ] || fail="$fail certificates that do not verify;"
[ "$rc" -eq 0 ] || fail="$fail scep-load reported failure;"
if [ -n "$crashes" ]; then
    echo "$crashes" | head -5
    fail="$fail crashed children;"
fi
growth() {  # growth BEFORE AFTER: the largest growth of a child, KiB
    local kv pid a b
    for kv in $1; do
        pid=${kv%%=*}
        a=${kv#*=}
        b=$(echo "$2" | tr ' ' '\n' | sed -n "s/^$pid=//p")
        [ -n "$b" ] && echo $((b - a))
    done | sort -n | tail -1
}
echo "soak: resident KiB of the children (pid=KiB) after $first: $rss1"
echo "soak: resident KiB of the children (pid=KiB) after $((first + mid)): $rss2"
echo "soak: resident KiB of the children (pid=KiB) after $n: $rss3"
g2=$(growth "$rss1" "$rss2")
g3=$(growth "$rss2" "$rss3")
echo "soak: largest growth of a child: ${g2:-?} KiB in the middle part (warm-up may show here), ${g3:-?} KiB in the last part (limit $rss_limit)"
[ "$(echo "$rss1" | wc -w)" -eq "$(echo "$children_after" | wc -w)" ] \
    || fail="$fail the set of children changed;"
[ -n "$g3" ] && [ "$g3" -le "$rss_limit" ] || fail="$fail memory growth;"
echo "soak: error log: $(grep -c . "$work/httpd/logs/error_log" || true) lines, $(grep -c 'AH0' "$work/httpd/logs/error_log" || true) from httpd itself; kept in $work/httpd/logs"

if [ -n "$fail" ]; then
    echo "soak: FAIL ($fail )"
    exit 1
fi
echo "soak: PASS"
