#!/bin/sh
# make-corpus.sh: (re)make the seed corpus of fuzz_pkimessage with the
# project's test client.  Run from the top of the build tree after
# "make tools/scep-test-client".  Every request is encrypted to
# test/fuzz/ra.pem, the throwaway RA embedded in fuzz_pkimessage.c, so
# that the fuzzer can open the envelopes; replies are signed with it.

set -eu

top=$(cd "$(dirname "$0")/../.." && pwd)
client=$top/tools/scep-test-client
fuzz=$top/test/fuzz
out=$fuzz/corpus/pkimessage
work=$(mktemp -d "${TMPDIR:-/tmp}/scep-corpus.XXXXXX")
trap 'rm -rf "$work"' EXIT

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
