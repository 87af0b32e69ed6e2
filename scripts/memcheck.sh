#!/bin/bash
# memcheck.sh [N1 N2]: the modules under valgrind memcheck, with real
# requests, at two request counts.
#
# For each count N (default 50, then 250) one httpd runs single-process
# (httpd -X, event MPM) under
#   valgrind --tool=memcheck --leak-check=full
#            --errors-for-leak-kinds=definite --track-origins=no
# with mod_ca, mod_ca_simple, mod_scep and mod_ca_disk (storing the
# certificates of /scep-store, and holding requests for approval at
# /scep-disk) and the demo PKI of scripts/make-pki.sh. It is sent about N
# requests:
#   - 70% from bench/scep-load soak at concurrency 2, drawn by weight (a
#     rare class may not come up at these counts) from: enrollments by POST,
#     GET and chunked POST in every cipher and digest, renewals, CertPoll,
#     GetCert, GetCRL, GetCACert, GetCACaps, GetNextCACert, OPTIONS, HEAD,
#     and every bad-input class (bad signatures, wrong recipient, garbage,
#     empty, truncated and oversize bodies, bad base64, unknown operation,
#     PUT, a client hanging up mid-body, ...), each answer checked;
#   - the rest in rounds of: a scepclient enrollment (GetCACaps, GetCACert,
#     PKIOperation); with tools/scep-test-client a PKCSReq to /scep-store
#     and a GetCert of the certificate it got, a PKCSReq to /scep-disk
#     (PENDING), approval with tools/ca-disk-sign and a CertPoll that gets
#     the certificate; a garbage body, a GET with bad base64 and a body
#     over ScepSize, with curl.
# Then httpd is stopped (SIGTERM: a clean exit) and valgrind's report is
# read.
#
# It passes when, for both counts: every request got the answer its class
# expects and none a 5xx; "ERROR SUMMARY: 0 errors" (no invalid read or
# write, no use of uninitialised memory, no definite leak); 0 bytes
# definitely lost; and the same number of bytes indirectly and possibly
# lost at both counts (a leak per request would grow with N).
# scripts/valgrind.supp holds the suppressions, each with its reason.
#
# Prints the figures per count and a last line "memcheck: PASS ..." or
# "memcheck: FAIL (...)"; exits 0 only on PASS. Takes about two minutes
# on 2 cores (valgrind runs the server some 30 times slower); it is the
# memcheck stage of scripts/test-all.sh. Figures: docs/hardening.md.
#
# Environment: WORK (default build-memcheck/: valgrind logs, httpd logs,
# PKI; kept for reading), VALGRIND_OPTS (more valgrind options).

set -euo pipefail

prog=memcheck
top=$(cd "$(dirname "$0")/.." && pwd)
work=${WORK:-$top/build-memcheck}
. "$top/bench/lib.sh"

counts=("${1:-50}" "${2:-250}")
supp=$top/scripts/valgrind.supp
client=$top/tools/scep-test-client
signtool=$top/tools/ca-disk-sign

command -v valgrind >/dev/null || die "valgrind is not installed (.ci/install)"
command -v scepclient >/dev/null || die "scepclient is not installed (package scep)"

# ---------------------------------------------------------------- build
(
    cd "$top"
    [ -x configure ] || ./autogen.sh
    [ -f Makefile ] && [ -f config.status ] || ./configure
    make -j"$(nproc)" libcautil.la mod_ca.la mod_ca_simple.la mod_scep.la \
        mod_ca_disk.la tools/scep-test-client tools/ca-disk-sign >/dev/null
) || die "building the modules failed"
make -C "$top/bench" scep-load >/dev/null || die "building bench/scep-load failed"
load=$top/bench/scep-load

rm -rf "$work"
mkdir -p "$work/modules"
for m in mod_ca mod_ca_simple mod_scep mod_ca_disk; do
    cp "$top/.libs/$m.so" "$work/modules/"
done
"$top/scripts/make-pki.sh" "$work/pki"
pki=$work/pki
"$load" keys --cache "$top/bench/cache" --count 8 >/dev/null

# ---------------------------------------------------------------- config
# write_conf DIR PORT: the server of one run: bench/lib.sh's (the soak's
# /scep, with a next CA and a CRL URL) in one process of four threads,
# plus mod_ca_disk at two more locations
write_conf() {
    local dir=$1 port=$2
    BENCH_SERVERS=1 BENCH_THREADS=4 \
        write_httpd_conf "$dir" "$port" "$pki" "$work/modules" "\
    ScepRANextCertificate \"$pki/nextra.pem\"
    CASimpleNextCertificate \"$pki/nextca.pem\"
    ScepCRLURL http://127.0.0.1/ca.crl"
    cat >>"$dir/httpd.conf" <<EOF

LoadModule ca_disk_module "$work/modules/mod_ca_disk.so"

# mod_ca_simple signs, mod_ca_disk stores and answers GetCert and CertPoll
<Location /scep-store>
    SetHandler scep
    ScepRACertificate "$pki/ra.pem"
    ScepRAKey "$pki/ra.key"
    ScepSubjectRequest *
    CASimpleCertificate "$pki/ca.pem"
    CASimpleKey "$pki/ca.key"
    CASimpleTime on
    CASimpleSerialRandom on
    CADiskCertificateDirectory "$dir/disk/store"
</Location>

# requests wait for tools/ca-disk-sign
<Location /scep-disk>
    SetHandler scep
    ScepRACertificate "$pki/ra.pem"
    ScepRAKey "$pki/ra.key"
    ScepSubjectRequest *
    CADiskRequestDirectory "$dir/disk/requests"
    CADiskCertificateDirectory "$dir/disk/certs"
</Location>
EOF
}

# ---------------------------------------------------------------- driving
fail=""
flag() {
    echo "memcheck: $*" >&2
    fail="$fail $*;"
}

# pkiop PATH REQ.der OUT.der: POST a pkiMessage, prints the HTTP status
pkiop() {
    curl -sS -o "$3" -w '%{http_code}' --max-time 300 \
        -H 'Content-Type: application/x-pki-message' --data-binary "@$2" \
        "$base$1?operation=PKIOperation" || echo 000
}

# reply_field REP.der KEY SIGNER FIELD: one field of a CertRep
reply_field() {
    "$client" reply --in "$1" --ra "$pki/ra.pem" --key "$2" --signer "$3" \
        --cert-out "$1.pem" 2>/dev/null | sed -n "s/^$4=//p"
}

# expect WHAT WANT GOT
expect() {
    [ "$2" = "$3" ] || flag "$1: expected $2, got ${3:-nothing}"
}

# round R: one round of the scripted requests (10 requests: scepclient
# sends GetCACaps, GetCACert and PKIOperation)
round() {
    local r=$1 d=$rounds_dir/$1 tid serial st
    mkdir -p "$d/scepclient"
    # scepclient: GetCACaps, GetCACert, PKIOperation
    if ! scepclient -server-url "$base/scep" -private-key "$d/scepclient/key" \
            -certificate "$d/scepclient/cert.pem" -cn "memcheck-$r" \
            -challenge any >"$d/scepclient.log" 2>&1 \
       || [ ! -s "$d/scepclient/cert.pem" ]; then
        flag "round $r: scepclient did not enroll (see $d/scepclient.log)"
    fi

    # PKCSReq to /scep-store, then GetCert of the certificate it got
    "$client" request --ra "$pki/ra.pem" --key "$d/k1" --signer-out "$d/s1" \
        --subject "/CN=memcheck-store-$r" --out "$d/store.der" >/dev/null \
        || flag "round $r: scep-test-client could not make store.der"
    expect "round $r: store PKCSReq HTTP" 200 "$(pkiop /scep-store "$d/store.der" "$d/store.rep")"
    expect "round $r: store PKCSReq" SUCCESS "$(reply_field "$d/store.rep" "$d/k1" "$d/s1" pkiStatus)"
    serial=$(openssl x509 -in "$d/store.rep.pem" -noout -serial 2>/dev/null \
        | sed 's/^serial=//' || true)
    "$client" request --ra "$pki/ra.pem" --key "$d/k1" --signer "$d/s1" \
        --type 21 --issuer-and-serial "$pki/ca.pem:${serial:-01}" \
        --out "$d/getcert.der" >/dev/null \
        || flag "round $r: scep-test-client could not make getcert.der"
    expect "round $r: GetCert HTTP" 200 "$(pkiop /scep-store "$d/getcert.der" "$d/getcert.rep")"
    expect "round $r: GetCert" SUCCESS "$(reply_field "$d/getcert.rep" "$d/k1" "$d/s1" pkiStatus)"

    # PKCSReq to /scep-disk: PENDING; approved; CertPoll gets it
    tid=memcheck-$r-$$
    "$client" request --ra "$pki/ra.pem" --key "$d/k2" --signer-out "$d/s2" \
        --subject "/CN=memcheck-disk-$r" --transaction-id "$tid" \
        --out "$d/disk.der" >/dev/null \
        || flag "round $r: scep-test-client could not make disk.der"
    expect "round $r: disk PKCSReq HTTP" 200 "$(pkiop /scep-disk "$d/disk.der" "$d/disk.rep")"
    expect "round $r: disk PKCSReq" PENDING "$(reply_field "$d/disk.rep" "$d/k2" "$d/s2" pkiStatus)"
    "$signtool" -c "$pki/ca.pem" -k "$pki/ca.key" -r "$srv/disk/requests" \
        -o "$srv/disk/certs" --all >/dev/null || flag "round $r: ca-disk-sign failed"
    "$client" request --ra "$pki/ra.pem" --key "$d/k2" --signer "$d/s2" \
        --type 20 --transaction-id "$tid" \
        --issuer-and-subject "$pki/ca.pem:/CN=memcheck-disk-$r" \
        --out "$d/poll.der" >/dev/null \
        || flag "round $r: scep-test-client could not make poll.der"
    expect "round $r: CertPoll HTTP" 200 "$(pkiop /scep-disk "$d/poll.der" "$d/poll.rep")"
    expect "round $r: CertPoll" SUCCESS "$(reply_field "$d/poll.rep" "$d/k2" "$d/s2" pkiStatus)"

    # refused before any CertRep: garbage, bad base64, over ScepSize
    head -c 700 /dev/urandom >"$d/garbage"
    expect "round $r: garbage body" 400 "$(pkiop /scep "$d/garbage" /dev/null)"
    st=$(curl -sS -o /dev/null -w '%{http_code}' --max-time 300 \
        "$base/scep?operation=PKIOperation&message=%21%21not*base64%21%21" || echo 000)
    expect "round $r: bad base64" 400 "$st"
    head -c 300000 /dev/zero >"$d/oversize"
    expect "round $r: oversize body" 413 "$(pkiop /scep "$d/oversize" /dev/null)"
}

# run N: one valgrind'ed server, about N requests; sets the figures
run() {
    local n=$1 port pid soak_n rounds r rc=0 t0 t1 vglog want
    srv=$work/run-$n
    rounds_dir=$srv/rounds
    vglog=$srv/valgrind.log
    port=$(free_port 29100)
    base=http://127.0.0.1:$port
    write_conf "$srv" "$port"
    mkdir -p "$rounds_dir"

    t0=$(date +%s)
    # --keep-debuginfo: httpd unloads the modules before valgrind's leak
    # search at exit; without it their frames print as "???"
    # shellcheck disable=SC2086
    valgrind --tool=memcheck --leak-check=full \
        --errors-for-leak-kinds=definite --track-origins=no \
        --keep-debuginfo=yes --num-callers=30 --suppressions="$supp" \
        --log-file="$vglog" ${VALGRIND_OPTS:-} \
        "$(find_httpd)" -X -f "$srv/httpd.conf" \
        >"$srv/stdout" 2>&1 &
    pid=$!
    for _ in $(seq 1 120); do
        curl -fsS -o /dev/null "$base/scep?operation=GetCACaps" 2>/dev/null && break
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.5
    done
    if ! kill -0 "$pid" 2>/dev/null; then
        tail -n 20 "$srv/stdout" "$srv/logs/error_log" "$vglog" >&2 || true
        die "httpd under valgrind did not start (N=$n)"
    fi

    soak_n=$((n * 7 / 10))
    rounds=$(((n - soak_n + 9) / 10))
    say "N=$n: $soak_n requests from scep-load soak, $rounds rounds of 10 scripted ones, valgrind pid $pid"
    "$load" soak --port "$port" --ra "$pki/ra.pem" --ca "$pki/ca.pem" \
        --ca-key "$pki/ca.key" --cache "$top/bench/cache" --keys 8 \
        -n "$soak_n" -c 2 --seed "$n" --verify 20 --timeout 300 \
        >"$srv/soak.out" 2>"$srv/soak.err" || rc=$?
    if [ "$rc" -ne 0 ]; then
        grep 'first:' "$srv/soak.out" >&2 || true
        flag "N=$n: scep-load soak reported failure (see $srv/soak.out)"
    fi
    for r in $(seq 1 "$rounds"); do
        round "$r"
    done

    kill -TERM "$pid" 2>/dev/null || true
    for _ in $(seq 1 240); do
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.5
    done
    if kill -0 "$pid" 2>/dev/null; then
        kill -KILL "$pid" 2>/dev/null || true
        flag "N=$n: httpd did not exit within 2 minutes of SIGTERM"
    fi
    wait "$pid" 2>/dev/null || true
    t1=$(date +%s)

    # the figures
    sent=$(grep -c . "$srv/logs/access_log" || true)
    fivexx=$(awk '$9 ~ /^5/' "$srv/logs/access_log" | wc -l)
    errors=$(sed -n 's/.*ERROR SUMMARY: \([0-9,]*\) errors.*/\1/p' "$vglog" | tr -d , | tail -1)
    definite=$(lost definitely "$vglog")
    indirect=$(lost indirectly "$vglog")
    possible=$(lost possibly "$vglog")
    reachable=$(lost "still reachable" "$vglog")
    suppressed=$(lost suppressed "$vglog")
    echo "memcheck: N=$n: $sent requests answered ($fivexx 5xx) in $((t1 - t0)) s; ERROR SUMMARY ${errors:-?}; lost: definitely $definite, indirectly $indirect, possibly $possible bytes; still reachable $reachable bytes; suppressed $suppressed bytes"

    # every request is in the access log, even those that hang up on
    # purpose mid-body (as a 400); one more GetCACaps found the server up
    want=$((soak_n + 10 * rounds))
    [ "$sent" -ge "$want" ] || flag "N=$n: only $sent of $want requests reached the server"
    [ "$fivexx" -eq 0 ] || flag "N=$n: $fivexx answers were 5xx"
    [ "${errors:-x}" = 0 ] || flag "N=$n: valgrind ERROR SUMMARY ${errors:-missing} (see $vglog)"
    [ "$definite" = 0 ] || flag "N=$n: $definite bytes definitely lost (see $vglog)"
    if grep -q 'definitely lost in loss record' "$vglog"; then
        grep -A14 'definitely lost in loss record' "$vglog" | head -40 >&2
    fi
}

# lost KIND LOG: bytes of the LEAK SUMMARY line, 0 when valgrind found
# nothing at all ("All heap blocks were freed")
lost() {
    local v
    v=$(sed -n "s/.*$1 lost: \([0-9,]*\) bytes.*/\1/p; s/.*$1: \([0-9,]*\) bytes.*/\1/p" "$2" \
        | tr -d , | tail -1)
    if [ -z "$v" ] && grep -q 'All heap blocks were freed' "$2"; then
        v=0
    fi
    echo "${v:-?}"
}

declare -A indirect_at possible_at
t_start=$(date +%s)
for n in "${counts[@]}"; do
    run "$n"
    indirect_at[$n]=$indirect
    possible_at[$n]=$possible
done
n1=${counts[0]}
n2=${counts[1]}
if [ "${indirect_at[$n1]}" != "${indirect_at[$n2]}" ]; then
    flag "indirectly lost differs: ${indirect_at[$n1]} bytes at N=$n1, ${indirect_at[$n2]} at N=$n2"
fi
if [ "${possible_at[$n1]}" != "${possible_at[$n2]}" ]; then
    flag "possibly lost differs: ${possible_at[$n1]} bytes at N=$n1, ${possible_at[$n2]} at N=$n2"
fi

if [ -n "$fail" ]; then
    echo "memcheck: FAIL ($fail ) logs in $work"
    exit 1
fi
echo "memcheck: PASS: N=$n1 and N=$n2, 0 errors, 0 bytes definitely lost, indirectly lost ${indirect_at[$n1]} = ${indirect_at[$n2]} bytes, possibly ${possible_at[$n1]} = ${possible_at[$n2]} ($(( $(date +%s) - t_start )) s)"
