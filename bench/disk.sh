#!/bin/bash
# bench/disk.sh: the mod_ca_disk store-size benchmark (issue 6). Does the
# enrollment rate hold up as the certificate store grows?
#
# Three httpd (event MPM, configured as bench/run.sh's), each with mod_ca,
# mod_ca_simple, mod_scep and mod_ca_disk loaded, on three ports:
#
#   store   CADiskCertificateDirectory set (on the local disk, under the
#           work directory): every certificate issued is written twice
#           (by-serial and by-transaction, fsync, link, rename, directory
#           fsync; see ca_disk_store.h)
#   ref     the same without the directive: nothing is stored
#   fresh   the same as store with a directory of its own, started for
#           the second rounds only
#
# The store is filled to SMALL certificates by enrollments through the
# server, then ROUNDS rounds of N enrollments are sent to store and ref,
# interleaved (the order turns round by round); the store is then grown
# to LARGE certificates, again by real enrollments, fresh is filled to
# SMALL, and the rounds are repeated with all three. Every enrollment is
# a PKCSReq of its own (bench/scep-load enroll: unique subject
# /O=scep-load/CN=<tag>-<n>, fresh random transactionID, RSA-2048 client
# key, AES-128-CBC, SHA-256), over keep-alive connections at concurrency
# C; only HTTP 200 + pkiStatus SUCCESS counts and a sample of the
# certificates is verified against the CA.
#
# The figure is the ratio store/ref of enrollments/s within each round:
# both sides see the same machine at the same moment (2 vCPUs shared with
# other work), so the ratio cancels most of the noise that raw rates
# carry. The ratio at SMALL is the price of storing (fsync and all); the
# verdict compares the ratio at LARGE with it:
#
#   PASS  when median(ratio at LARGE) >= LIMIT x median(ratio at SMALL)
#
# Beside it, the ratio store/fresh of the second rounds: a store of LARGE
# against one of SMALL at the same moment, with the same code.
#
# The stores are checked after the run: as many files under
# by-transaction and under by-serial as the server answered SUCCESS (no
# certificate lost, none extra), no temporary file left, the two names of
# each certificate one file (hard links), one issuer directory named after
# the SHA-256 of the CA's subject, and SAMPLE certificates of store
# opened: each parses, verifies against the CA, and its serial number
# names the same file under by-serial.
#
# Environment (defaults in brackets):
#   SMALL [3000]      certificates in the store before the first rounds
#   LARGE [100000]    certificates in the store before the second rounds
#   ROUNDS [5]        interleaved rounds at each size
#   N [2000]          enrollments per server per round (each round adds N
#                     to the store)
#   C [16]            concurrent connections
#   WARM [200]        enrollments sent to each server, unmeasured, before
#                     the rounds at each size
#   CHUNK [25000]     enrollments per scep-load run while growing the store
#                     (requests are pre-built, about 6 KiB of memory each)
#   KEYS [256]        client keys in the cache (bench/cache, made once)
#   LIMIT [0.9]       the verdict's factor
#   SAMPLE [200]      stored certificates opened by the check
#   STRACE [0]        if 1: strace -c -w -f of the store server's children
#                     during 500 more enrollments at LARGE (counts and wall
#                     time of the file system calls; slow, after the
#                     measurements, not in the figures)
#   MODULES [the tree's .libs]  measure the modules in this directory
#   WORK [bench/work/disk]  scratch directory (PKI, configs, logs, the
#                     store, results); removed at the start of a run
#
# Runs as root (httpd's children then run as www-data, which owns the
# store; the work directory's parents must be searchable by it) or as a
# normal user. Needs the packages apache2, curl and openssl, and a
# configured tree. Output: a table on stdout, also in
# $WORK/results/summary.txt; raw key=value results in $WORK/results/. The
# full run (3,000 and 100,000) takes 8 to 11 minutes at several hundred
# enrollments/s, most of it growing the store; the store takes about
# 450 MiB of disk (two names of one file, a 4 KiB block per certificate).

set -euo pipefail

prog=disk.sh
top=$(cd "$(dirname "$0")/.." && pwd)
work=${WORK:-$top/bench/work/disk}
. "$top/bench/lib.sh"

small=${SMALL:-3000}
large=${LARGE:-100000}
rounds=${ROUNDS:-5}
n=${N:-2000}
conc=${C:-16}
warm=${WARM:-200}
chunk=${CHUNK:-25000}
keys=${KEYS:-256}
limit=${LIMIT:-0.9}
sample=${SAMPLE:-200}
strace_run=${STRACE:-0}
res=$work/results
store=$work/store
# the store's layout, as in ca_disk_store.h
CA_DISK_BY_TRANSACTION=by-transaction
CA_DISK_BY_SERIAL=by-serial

[ "$large" -gt "$small" ] || die "LARGE ($large) must be more than SMALL ($small)"
for p in apache2 curl openssl; do
    dpkg -s "$p" >/dev/null 2>&1 || die "package $p is missing"
done

say "building"
build_all mod_ca_disk.la
rm -rf "$work"
mkdir -p "$work" "$res"
snapshot_modules "$work/modules" mod_ca_disk
say "making the PKI (RSA 2048)"
"$top/scripts/make-pki.sh" "$work/pki" >/dev/null
"$load" keys --cache "$top/bench/cache" --count "$keys" >/dev/null

{
    machine_info
    echo "fs=$(findmnt -no FSTYPE,OPTIONS -T "$work" 2>/dev/null | tr -s ' ' || df -T "$work" | awk 'NR == 2 {print $2}')"
    echo "disk=$(df -h "$work" | awk 'NR == 2 {print $2 " total, " $4 " free"}')"
} >"$res/machine.txt"

# the servers: httpd-SIDE, on port[SIDE], storing in dir[SIDE] (none: ref)
declare -A port dir
dir[store]=$work/store
dir[fresh]=$work/store-fresh
p=28900
for side in store ref fresh; do
    port[$side]=$(free_port "$p")
    p=$((port[$side] + 1))
    write_httpd_conf "$work/httpd-$side" "${port[$side]}" "$work/pki" \
        "$work/modules" \
        "${dir[$side]:+    CADiskCertificateDirectory \"${dir[$side]}\"}" \
        mod_ca_disk
done
stop_all() {
    local side
    for side in store ref fresh; do
        stop_httpd "$work/httpd-$side"
    done
}
trap stop_all EXIT
start_httpd "$work/httpd-store" "${port[store]}"
start_httpd "$work/httpd-ref" "${port[ref]}"

# enroll OUT SIDE COUNT TAG: COUNT enrollments, all of them new requests,
# to one server; every run is kept in a file SIDE-*, whose SUCCESS
# answers the check adds up
enroll() {
    local out=$1 side=$2 count=$3 tag=$4 pids
    pids="$(httpd_pid "$work/httpd-$side") $(httpd_children "$work/httpd-$side")"
    "$load" enroll --port "${port[$side]}" --ra "$work/pki/ra.pem" \
        --ca "$work/pki/ca.pem" --server-pids "$pids" \
        --cache "$top/bench/cache" --keys "$keys" -n "$count" -c "$conc" \
        --warmup 0 --verify 100 --tag "$tag" >"$out" 2>>"$res/load.log" || true
    [ -s "$out" ] || die "scep-load wrote nothing to $out (see $res/load.log)"
}

# stored [SIDE]: certificates in a store (by-transaction names; no
# temporary files)
stored() {
    find "${dir[${1:-store}]}/$CA_DISK_BY_TRANSACTION" -maxdepth 1 -type f \
        -name '*.pem' 2>/dev/null | wc -l
}

# fill_to SIDE COUNT TAG: enrollments to a store until it holds COUNT
fill_to() {
    local side=$1 target=$2 tag=$3 have i=0 k t0 t1 out
    have=$(stored "$side")
    while [ "$have" -lt "$target" ]; do
        i=$((i + 1))
        k=$((target - have))
        [ "$k" -le "$chunk" ] || k=$chunk
        out=$res/$side-$tag-$i
        say "$side: $have certificates, enrolling $k more ($tag-$i)"
        t0=$(date +%s)
        enroll "$out" "$side" "$k" "$tag-$i"
        t1=$(date +%s)
        [ "$(stored "$side")" -gt "$have" ] || die "the store does not grow (see $out)"
        have=$(stored "$side")
        echo "$side $tag-$i: $have stored after $k enrollments, $(value enroll_per_s "$out") enrollments/s, errors $(value errors "$out"), $((t1 - t0)) s with the pre-build" >>"$res/grow.txt"
    done
}

# rounds_at LABEL SIDE...: WARM unmeasured enrollments on each side, then
# the interleaved rounds, the order turning by one side each round; the
# store's size before and after is recorded
rounds_at() {
    local label=$1 r side i
    shift
    local sides=("$@")
    for side in "${sides[@]}"; do
        enroll "$res/$side-warm-$label" "$side" "$warm" "warm-$label-$side"
    done
    echo "store_before_$label=$(stored)" >>"$res/sizes.txt"
    for r in $(seq 1 "$rounds"); do
        say "$label round $r/$rounds: $n enrollments each, store holds $(stored)"
        for i in $(seq 0 $((${#sides[@]} - 1))); do
            side=${sides[$(((i + r - 1) % ${#sides[@]}))]}
            enroll "$res/$side-$label.$r" "$side" "$n" "$label-r$r-$side"
        done
    done
    echo "store_after_$label=$(stored)" >>"$res/sizes.txt"
}

# dir_sizes LABEL: files and disk use of the two trees
dir_sizes() {
    local label=$1 issuer
    {
        echo "files_by_transaction_$label=$(stored)"
        echo "files_by_serial_$label=$(find "$store/$CA_DISK_BY_SERIAL" -mindepth 2 -maxdepth 2 -type f -name '*.pem' | wc -l)"
        echo "du_store_$label=$(du -sh "$store" | cut -f1)"
        echo "du_by_transaction_$label=$(du -sh "$store/$CA_DISK_BY_TRANSACTION" | cut -f1)"
        echo "dir_inode_by_transaction_$label=$(stat -c %s "$store/$CA_DISK_BY_TRANSACTION")"
        for issuer in "$store/$CA_DISK_BY_SERIAL"/*/; do
            echo "dir_inode_by_serial_$label=$(stat -c %s "$issuer")"
        done
    } >>"$res/sizes.txt"
}

t_start=$(date +%s)
fill_to store "$small" fill
dir_sizes small
rounds_at small store ref
fill_to store "$large" grow
dir_sizes large
start_httpd "$work/httpd-fresh" "${port[fresh]}"
fill_to fresh "$small" fill
echo "fresh_before_large=$(stored fresh)" >>"$res/sizes.txt"
rounds_at large store ref fresh
echo "fresh_after_large=$(stored fresh)" >>"$res/sizes.txt"
t_end=$(date +%s)

if [ "$strace_run" = 1 ] && command -v strace >/dev/null 2>&1; then
    say "strace -c of the store's children during 500 enrollments"
    strace_args=""
    for pid in $(httpd_children "$work/httpd-store"); do
        strace_args="$strace_args -p $pid"
    done
    # shellcheck disable=SC2086
    # -w: time in the call as the caller sees it (an fsync waits, it does
    # not spend CPU); the calls of the store and of answering
    strace -c -w -f -S time -o "$res/strace-store.txt" \
        -e trace=fsync,fdatasync,openat,newfstatat,link,rename,unlink,mkdir,write,writev,read,close,getpid \
        $strace_args 2>/dev/null &
    strace_pid=$!
    sleep 1
    enroll "$res/store-strace" store 500 strace-store
    kill -INT "$strace_pid" 2>/dev/null || true
    wait "$strace_pid" 2>/dev/null || true
fi

echo "loadavg_after=$(cut -d' ' -f1-3 /proc/loadavg)" >>"$res/machine.txt"
store_errors=0
for side in store ref fresh; do
    crash_lines "$work/httpd-$side" >"$res/crashes-$side"
    store_errors=$((store_errors + $(grep -c ':error\]\|:crit\]' "$work/httpd-$side/logs/error_log" || true)))
done
stop_all
trap - EXIT

# ------------------------------------------------------------------ check
say "checking the stores"
check_fail=""

# check_counts SIDE: as many certificates under each name as the server
# answered SUCCESS, both names one file, nothing else; a line for the
# report in $res/check-SIDE
check_counts() {
    local side=$1 d=${dir[$1]} f success=0 by_t by_s tmps not_linked bad_names
    for f in "$res/$side"-*; do
        success=$((success + $(value scep_success "$f")))
    done
    by_t=$(stored "$side")
    by_s=$(find "$d/$CA_DISK_BY_SERIAL" -mindepth 2 -maxdepth 2 -type f -name '*.pem' | wc -l)
    tmps=$(find "$d" -name '.tmp.*' | wc -l)
    not_linked=$(find "$d/$CA_DISK_BY_TRANSACTION" -maxdepth 1 -type f -name '*.pem' ! -links 2 | wc -l)
    bad_names=$(find "$d/$CA_DISK_BY_TRANSACTION" -maxdepth 1 -type f -regextype posix-extended ! -regex '.*/[0-9a-f]{64}\.pem' | wc -l)
    [ "$by_t" -eq "$success" ] || check_fail="$check_fail $side: by-transaction holds $by_t, not $success;"
    [ "$by_s" -eq "$success" ] || check_fail="$check_fail $side: by-serial holds $by_s, not $success;"
    [ "$tmps" -eq 0 ] || check_fail="$check_fail $side: $tmps temporary files;"
    [ "$not_linked" -eq 0 ] || check_fail="$check_fail $side: $not_linked by-transaction files not hard-linked to by-serial;"
    [ "$bad_names" -eq 0 ] || check_fail="$check_fail $side: $bad_names other files in by-transaction;"
    echo "$side: $success SUCCESS answers, by-transaction $by_t files, by-serial $by_s, temporary files $tmps, not hard-linked $not_linked, misnamed $bad_names" >"$res/check-$side"
}
check_counts store
check_counts fresh
by_t=$(stored)

# the issuer directory: SHA-256 of the DER of the CA's subject (the
# issuer of every certificate), the 6th element of the TBSCertificate
openssl x509 -in "$work/pki/ca.pem" -outform DER -out "$work/ca.der"
issuer_hash=$(openssl asn1parse -inform DER -in "$work/ca.der" \
    | sed -nE 's/^ *([0-9]+):d=2 +hl= *([0-9]+) +l= *([0-9]+).*/\1 \2 \3/p' \
    | sed -n 6p \
    | { read -r off hl len; dd if="$work/ca.der" bs=1 skip="$off" count=$((hl + len)) 2>/dev/null; } \
    | sha256sum | cut -d' ' -f1)
issuers=$(find "$store/$CA_DISK_BY_SERIAL" -mindepth 1 -maxdepth 1 -type d -printf '%f\n')
[ "$issuers" = "$issuer_hash" ] \
    || check_fail="$check_fail issuer directories '$issuers', expected $issuer_hash;"

# SAMPLE certificates, spread over the whole store
every=$(( by_t / sample ))
[ "$every" -ge 1 ] || every=1
sampled=0
sample_bad=0
: >"$res/sample.txt"
while read -r f; do
    serial=$(openssl x509 -in "$f" -noout -serial 2>/dev/null | sed 's/^serial=//' | tr 'A-F' 'a-f')
    twin="$store/$CA_DISK_BY_SERIAL/$issuer_hash/$serial.pem"
    ok=yes
    if [ -z "$serial" ] || [ ! "$f" -ef "$twin" ] || ! cmp -s "$f" "$twin" \
        || ! openssl verify -CAfile "$work/pki/ca.pem" "$f" >/dev/null 2>&1; then
        ok=no
        sample_bad=$((sample_bad + 1))
    fi
    sampled=$((sampled + 1))
    echo "$ok $f $serial $(openssl x509 -in "$f" -noout -subject 2>/dev/null)" >>"$res/sample.txt"
done < <(find "$store/$CA_DISK_BY_TRANSACTION" -maxdepth 1 -type f -name '*.pem' \
         | awk -v k="$every" 'NR % k == 0' | head -n "$sample")
[ "$sample_bad" -eq 0 ] || check_fail="$check_fail $sample_bad of $sampled sampled certificates bad (see $res/sample.txt);"
[ "$store_errors" -eq 0 ] || check_fail="$check_fail $store_errors error lines in the error logs;"
[ "$(cat "$res"/crashes-* | wc -l)" -eq 0 ] || check_fail="$check_fail crashed children;"
dir_sizes end

# ----------------------------------------------------------------- report
sz() { value "$1" "$res/sizes.txt"; }
{
    echo "# mod_ca_disk store-size benchmark ($(value date "$res/machine.txt"))"
    echo
    echo "machine: $(value nproc "$res/machine.txt") x $(value cpu "$res/machine.txt"), kernel $(value kernel "$res/machine.txt"), store on $(value fs "$res/machine.txt") ($(value disk "$res/machine.txt"))"
    echo "software: $(value openssl "$res/machine.txt"); $(value httpd "$res/machine.txt"); tree $(value git "$res/machine.txt")"
    echo "load average before/after: $(value loadavg_before "$res/machine.txt") / $(value loadavg_after "$res/machine.txt")"
    echo "command: SMALL=$small LARGE=$large ROUNDS=$rounds N=$n C=$conc WARM=$warm CHUNK=$chunk KEYS=$keys LIMIT=$limit bench/disk.sh ($((t_end - t_start)) s)"
    echo "store size during the rounds: $(sz store_before_small)-$(sz store_after_small) (small), $(sz store_before_large)-$(sz store_after_large) (large; fresh $(sz fresh_before_large)-$(sz fresh_after_large))"
    echo
    printf '| %-36s | %7s | %-34s | %7s | %-34s |\n' "figure" "small" "rounds" "large" "rounds"
    printf '| %-36s | %7s | %-34s | %7s | %-34s |\n' "---" "---:" "---" "---:" "---"
    row() {     # row LABEL COMMAND ARGS... (run once per size, PREFIX-size)
        local label=$1 a b
        shift
        a=$("$@" small)
        b=$("$@" large)
        printf '| %-36s | %7s | %-34s | %7s | %-34s |\n' "$label" \
            "$(echo "$a" | median)" "$(echo "$a" | list)" \
            "$(echo "$b" | median)" "$(echo "$b" | list)"
    }
    c() { col "$1" "$2-$3"; }
    rc() { ratio_col enroll_per_s "store-$1" enroll_per_s "ref-$1"; }
    row "store/ref enrollments/s" rc
    row "store, enrollments/s" c enroll_per_s store
    row "ref (no store), enrollments/s" c enroll_per_s ref
    row "store, latency p50 ms" c lat_p50_ms store
    row "ref, latency p50 ms" c lat_p50_ms ref
    row "store, latency p99 ms" c lat_p99_ms store
    row "ref, latency p99 ms" c lat_p99_ms ref
    row "store, server CPU ms per enrollment" c server_cpu_ms_per_enroll store
    row "ref, server CPU ms per enrollment" c server_cpu_ms_per_enroll ref
    row "store, errors" c errors store
    row "ref, errors" c errors ref
    echo
    echo "large rounds, the same moment: store of $(sz store_before_large)+ / fresh store of $(sz fresh_before_large)+: $(ratio_col enroll_per_s store-large enroll_per_s fresh-large | median) ($(ratio_col enroll_per_s store-large enroll_per_s fresh-large | list)); fresh/ref $(ratio_col enroll_per_s fresh-large enroll_per_s ref-large | median) ($(ratio_col enroll_per_s fresh-large enroll_per_s ref-large | list)); fresh enrollments/s $(col enroll_per_s fresh-large | median), latency p50/p99 ms $(col lat_p50_ms fresh-large | median) / $(col lat_p99_ms fresh-large | median), errors $(sum_col errors fresh-large)"
    r_small=$(rc small | median)
    r_large=$(rc large | median)
    echo "price of storing at $small: store/ref $r_small, i.e. $(awk -v r="$r_small" 'BEGIN {printf "%.0f %%", (1 - r) * 100}') of the enrollment rate (fsync of the file and of two directories, link, rename)"
    echo "store files: by-transaction $(sz files_by_transaction_small) / $(sz files_by_transaction_large) / $(sz files_by_transaction_end), by-serial $(sz files_by_serial_small) / $(sz files_by_serial_large) / $(sz files_by_serial_end) (at small / large / end)"
    echo "disk use: store $(sz du_store_small) / $(sz du_store_large) / $(sz du_store_end); by-transaction alone $(sz du_by_transaction_end); directory inodes at the end: by-transaction $(sz dir_inode_by_transaction_end) bytes, by-serial/<I> $(sz dir_inode_by_serial_end) bytes"
    echo "growing the store:"
    sed 's/^/  /' "$res/grow.txt"
    sed 's/^/check: /' "$res/check-store" "$res/check-fresh"
    echo "check: issuer directory $issuers (expected $issuer_hash), $sampled sampled certificates of store ($sample_bad bad), $store_errors error lines, crashed children $(cat "$res"/crashes-* | wc -l)"
    if [ -f "$res/strace-store.txt" ]; then
        echo "strace -c -w of the store's children, 500 enrollments:"
        sed 's/^/  /' "$res/strace-store.txt"
    fi
    if [ -n "$check_fail" ]; then
        echo "check: FAIL ($check_fail )"
    else
        echo "check: PASS"
    fi
    if awk -v a="$r_large" -v b="$r_small" -v l="$limit" 'BEGIN {exit !(a >= l * b)}'; then
        echo "verdict: PASS (median store/ref at $large $r_large >= $limit x $r_small at $small; rounds $(rc large | list) and $(rc small | list))"
    else
        echo "verdict: FAIL (median store/ref at $large $r_large < $limit x $r_small at $small; rounds $(rc large | list) and $(rc small | list))"
    fi
} | tee "$res/summary.txt"

[ -z "$check_fail" ] && grep -q '^verdict: PASS' "$res/summary.txt"
