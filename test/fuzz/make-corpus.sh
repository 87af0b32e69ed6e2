#!/bin/sh
# make-corpus.sh [pkimessage] [getdecode] [rebuild]: (re)make the seed
# corpora of the fuzz targets (default: all three), from the top of the
# build tree.
#
#   pkimessage  pkiMessages made with the project's test client ("make
#               tools/scep-test-client" first).  Every request is
#               encrypted to test/fuzz/ra.pem, the throwaway RA embedded
#               in fuzz_common.c, so that the fuzzer can open the
#               envelopes; replies are signed with it.
#   getdecode   query strings carrying pkiMessages of corpus/pkimessage in
#               each escaping real clients use (and base64url, refused)
#   rebuild     openssl req requests with various subjects and
#               subjectAltNames, each behind a few rule sets in the input
#               format of fuzz_rebuild.c
#
# The random keys make every run differ: commit a new corpus only after
# minimising it with -merge=1 (docs/hardening.md).  Inputs the fuzzers
# found and -merge=1 kept (named by their SHA-1, no extension) stay in
# corpus/getdecode and corpus/rebuild when the seeds are made again.

set -eu
LC_ALL=C
export LC_ALL

top=$(cd "$(dirname "$0")/../.." && pwd)
client=$top/tools/scep-test-client
fuzz=$top/test/fuzz
work=$(mktemp -d "${TMPDIR:-/tmp}/scep-corpus.XXXXXX")
trap 'rm -rf "$work"' EXIT

# ---------------------------------------------------------- pkimessage
pkimessage() {
    out=$fuzz/corpus/pkimessage
    [ -x "$client" ] || { echo "make tools/scep-test-client first" >&2; exit 1; }
    mkdir -p "$out"
    rm -f "$out"/*

    req() {   # req NAME [client options]
        name=$1
        shift
        "$client" request --ra "$fuzz/ra.pem" --key "$work/client.key" \
            --signer-out "$work/signer.pem" --out "$out/$name.der" "$@" >/dev/null
    }

    for c in aes128 aes192 aes256 des3 des; do
        req "pkcsreq-$c" --cipher "$c" --subject "/CN=fuzz.example/O=Fuzz" \
            --san "DNS:fuzz.example,email:fuzz@example.org,IP:192.0.2.1" \
            --challenge "s3cret"
    done
    req pkcsreq-sha1-utf8 --digest sha1 --challenge "$(printf 'p\303\244ss')" \
        --challenge-type utf8
    req pkcsreq-sha512 --digest sha512 --subject "/CN=x"
    req renewalreq --type 17 --subject "/CN=renew.example"
    req certpoll --type 20 --issuer-and-subject "$fuzz/ra.pem:/CN=fuzz.example"
    req getcert --type 21 --issuer-and-serial "$fuzz/ra.pem:0123456789ABCDEF"
    req getcrl --type 22 --issuer-and-serial "$fuzz/ra.pem:01"
    req nocontent --no-content

    # replies: FAILURE, PENDING (no envelope) and SUCCESS (encrypted to the
    # client, so the fuzzer only parses it)
    "$client" certrep --in "$out/pkcsreq-aes128.der" --ra "$fuzz/ra.pem" \
        --ra-key "$fuzz/ra.key" --status FAILURE --fail-info badRequest \
        --fail-info-text "challenge password rejected" \
        --out "$out/certrep-failure.der"
    "$client" certrep --in "$out/pkcsreq-aes128.der" --ra "$fuzz/ra.pem" \
        --ra-key "$fuzz/ra.key" --status PENDING --out "$out/certrep-pending.der"
    "$client" certrep --in "$out/pkcsreq-aes128.der" --ra "$fuzz/ra.pem" \
        --ra-key "$fuzz/ra.key" --out "$out/certrep-success.der"

    # a bare CSR with a challengePassword and SANs: what an envelope holds
    openssl cms -verify -noverify -inform DER -in "$out/pkcsreq-aes128.der" \
        -binary 2>/dev/null \
        | openssl cms -decrypt -inform DER -recip "$fuzz/ra.pem" \
            -inkey "$fuzz/ra.key" -binary -out "$out/csr-challenge.der"

    # regression: a signed message whose content is ContentInfo(envelopedData)
    # without its [0] content; scep_msg_parse() once dereferenced the missing
    # EnvelopedData (NULL + 0x10) before checking any signature
    printf '\060\013\006\011\052\206\110\206\367\015\001\007\003' \
        > "$work/env-empty.der"
    openssl cms -sign -in "$work/env-empty.der" -binary -nodetach \
        -signer "$work/signer.pem" -inkey "$work/client.key" -outform DER \
        -out "$out/regress-envelope-without-content.der"

    # the message= value of a GET as sscep sends it: base64 with %0A every 64
    # characters, '+' and '=' escaped, '/' raw
    openssl base64 -in "$out/certpoll.der" \
        | sed -e 's/+/%2B/g' -e 's/=/%3D/g' | awk 'ORS="%0A"' \
        > "$out/get-sscep-certpoll.txt"

    ls -l "$out"
}

# ---------------------------------------------------------- getdecode
# encode STYLE < DER: the message= value as that kind of client sends it
encode() {
    b64=$(openssl base64 -A)
    case $1 in
    rfc)    printf '%s' "$b64" | sed -e 's/+/%2B/g' -e 's|/|%2F|g' \
                -e 's/=/%3D/g' ;;
    sscep)  printf '%s\n' "$b64" | fold -w 64 \
                | sed -e 's/+/%2B/g' -e 's/=/%3D/g' | awk 'ORS="%0A"' ;;
    macos)  printf '%s' "$b64" | sed -e 's/=/%3D/g' ;;
    nopad)  printf '%s' "$b64" | sed -e 's/=*$//' -e 's/+/%2B/g' \
                -e 's|/|%2F|g' ;;
    raw)    printf '%s' "$b64" ;;
    url)    printf '%s' "$b64" | tr '+/' '-_' | sed -e 's/=*$//' ;;
    esac
}

getdecode() {
    in=$fuzz/corpus/pkimessage
    out=$fuzz/corpus/getdecode
    [ -f "$in/certpoll.der" ] || { echo "make the pkimessage corpus first" >&2
                                   exit 1; }
    mkdir -p "$out"
    rm -f "$out"/*.txt
    for m in pkcsreq-aes128 certpoll certrep-pending nocontent; do
        for s in rfc sscep macos nopad raw url; do
            v=$(encode $s < "$in/$m.der")
            case $s in
            nopad) q="message=$v&operation=PKIOperation" ;;
            raw)   q="x=1&&operation=PKIOperation&message=$v&message=2&y" ;;
            *)     q="operation=PKIOperation&message=$v" ;;
            esac
            printf '%s' "$q" > "$out/$s-$m.txt"
        done
    done
    printf '%s' "operation=GetCACaps&message=" > "$out/getcacaps.txt"
    printf '%s' "operation=GetCACert&message=CA%20name" > "$out/getcacert.txt"
    ls -l "$out"
}

# ---------------------------------------------------------- rebuild
# the field tables of fuzz_rebuild.c, in the same order
subject_fields="* CN O OU C L ST emailAddress serialNumber DC UID dnQualifier
                x500UniqueIdentifier 1.2.3.4 title street"
san_fields="* otherName rfc822Name dNSName x400Address directoryName
            ediPartyName uniformResourceIdentifier iPAddress registeredID"

index_of() {   # index_of WORD LIST...
    w=$1
    shift
    i=0
    for f in "$@"; do
        [ "$f" = "$w" ] && { echo $i; return; }
        i=$((i + 1))
    done
    echo "make-corpus: no field $w" >&2
    exit 1
}

byte() {
    printf "\\$(printf %03o "$1")"
}

# rule KIND FIELD [ARG]: one rule in the input format of fuzz_rebuild.c
#   s, a  Request of a subject field or subjectAltName type, ARG the count
#   S, A  Set, ARG the value
#   F     a subject Set whose expression fails to evaluate
rule() {
    set -f      # the lists hold a '*'
    case $1 in
    s|S|F) i=$(index_of "$2" $subject_fields); san=0 ;;
    a|A)   i=$(index_of "$2" $san_fields); san=1 ;;
    esac
    set +f
    case $1 in
    s|a) byte $((i * 8 + san)); byte "${3:-0}" ;;
    S|A) byte $((i * 8 + 2 + san)); byte ${#3}; printf '%s' "$3" ;;
    F)   byte $((i * 8 + 6)); byte 0 ;;
    esac
}

rules_all() {
    byte 2; rule s '*'; rule a '*'
}
rules_one() {
    byte 4; rule s CN 1; rule s O 1; rule a dNSName 1; rule a rfc822Name 1
}
rules_set() {
    byte 9
    rule S CN user-from-header
    rule s O 1
    rule A dNSName host.example
    rule A directoryName /CN=dir/O=Example
    rule A otherName '1.3.6.1.4.1.311.20.2.3;UTF8:user@example.org'
    rule A iPAddress 2001:db8::7
    rule A uniformResourceIdentifier https://example.org/x
    rule A registeredID 1.2.3.4
    rule A rfc822Name user@example.org
}
rules_limits() {
    byte 5
    rule s CN 2; rule s '*' 3; rule a iPAddress 1; rule a '*' 3
    rule a directoryName 1
}
rules_odd() {
    byte 5
    rule S CN ''
    rule A directoryName 'CN=a, O=b'
    rule S x500UniqueIdentifier abc
    rule S 1.2.3.4 'any text'
    rule S C XYZ
}
rules_fails() {
    byte 2; rule s '*'; rule F OU
}

rebuild() {
    out=$fuzz/corpus/rebuild
    mkdir -p "$out"
    rm -f "$out"/*.bin
    cat > "$work/req.cnf" <<'CNF'
[req]
distinguished_name = dn
[dn]
[dir_sect]
CN = dir.example
O = Example
CNF
    csr() {   # csr NAME SUBJECT [SAN]
        openssl req -new -config "$work/req.cnf" -newkey ec \
            -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$work/k.pem" \
            -utf8 -subj "$2" ${3:+-addext "subjectAltName=$3"} \
            -outform DER -out "$work/$1.der" 2>/dev/null
    }
    csr basic "/CN=fuzz.example/O=Fuzz" \
        "DNS:fuzz.example,email:fuzz@example.org,IP:192.0.2.1"
    csr many "/CN=a/CN=b/OU=x/OU=y/O=Org/C=DE/L=Berlin/emailAddress=a@b.example/serialNumber=123/DC=example/DC=org/UID=u1" \
        "DNS:a.example,DNS:b.example,IP:2001:db8::1,URI:https://example.org/x,dirName:dir_sect,otherName:1.3.6.1.4.1.311.20.2.3;UTF8:user@example.org,RID:1.2.3.4,email:x@example.org"
    csr sanonly "/" "DNS:only.example"
    csr utf8 "/CN=Gr$(printf '\303\274\303\237')e/O=Fuzz"
    cp "$fuzz/corpus/pkimessage/csr-challenge.der" "$work/challenge.der"
    for c in basic many sanonly utf8 challenge; do
        for r in all one set limits odd fails; do
            { rules_$r; cat "$work/$c.der"; } > "$out/$r-$c.bin"
        done
    done
    # regression: a Set dNSName with a UTF-8 value (REMOTE_USER "höst")
    # became an IA5String with 8-bit bytes, which strict parsers refuse
    { byte 1; rule A dNSName "h$(printf '\303\266')st.example"
      cat "$work/sanonly.der"; } > "$out/regress-set-dns-not-ia5.bin"
    ls -l "$out"
}

[ $# -eq 0 ] && set -- pkimessage getdecode rebuild
for t in "$@"; do
    case $t in
    pkimessage|getdecode|rebuild) $t ;;
    *) echo "make-corpus: no target '$t'" >&2; exit 2 ;;
    esac
done
