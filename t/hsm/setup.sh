#!/bin/sh
# t/hsm/setup.sh TOP: a SoftHSM2 token for mod_ca_engine's tests.
#
# Makes, under TOP/t/hsm/token (not in git):
#
#   softhsm2.conf   SoftHSM's configuration: the tokens below, nothing else
#   tokens/         the token "scep" (user PIN in pin), holding RSA 2048
#                   key pairs "ca" (id 01), "next" (id 02), "inter" (id 03)
#                   and the certificate "ca" (id 01)
#   openssl.cnf     an OpenSSL configuration that loads the pkcs11 engine
#                   with SoftHSM's module, for the openssl CLI
#   pin             the user PIN, one line, mode 0600
#   ca.pem          self-signed CA certificate of the token key "ca"
#   nextca.pem      self-signed CA certificate of the token key "next"
#   root.pem .key   a root CA held in files ...
#   inter.pem       ... and the intermediate CA it issued to token key
#                   "inter"; chain.pem holds root.pem
#   ra.pem  ra.key  an RA certificate issued by the token CA "ca" (the RA
#                   key is a file)
#   ready           written last: everything above exists
#
# Prints SOFTHSM2_CONF=<file> on stdout (t/TEST.PL puts such lines into the
# environment httpd starts with); everything else goes to stderr.  Keeps a
# token that is ready; "rm -rf t/hsm/token" makes a new one.  When the
# packages are missing (softhsm2, opensc, libengine-pkcs11-openssl: see
# .ci/install) it says so and exits 0 without a token: the server then
# starts without the engine locations and t/ca_engine skips.
#
# Run as root (as CI does), it gives the token to the user httpd's children
# run as (HSM_USER, default nobody): they open it again after the fork, and
# SoftHSM takes locks in the token directory.

set -eu

[ $# -ge 1 ] || { echo "usage: $0 TOP" >&2; exit 2; }
top=$1
dir=$top/t/hsm/token
conf=$dir/softhsm2.conf
module=${SOFTHSM2_MODULE:-/usr/lib/softhsm/libsofthsm2.so}
hsm_user=${HSM_USER:-nobody}

PIN=hsm-Pin-5171
SO_PIN=hsm-SO-5678
LABEL=scep

say() {
    echo "t/hsm/setup.sh: $*" >&2
}

missing=""
for p in softhsm2-util pkcs11-tool openssl; do
    command -v "$p" >/dev/null 2>&1 || missing="$missing $p"
done
[ -r "$module" ] || missing="$missing $module"
enginesdir=$(openssl version -e 2>/dev/null | sed -n 's/^ENGINESDIR: "\(.*\)"$/\1/p')
[ -n "$enginesdir" ] && [ -r "$enginesdir/pkcs11.so" ] \
    || missing="$missing $enginesdir/pkcs11.so"
if [ -n "$missing" ]; then
    say "not making a token, missing:$missing (run .ci/install)"
    exit 0
fi

export SOFTHSM2_CONF="$conf"
# the openssl CLI reads this for the commands that use the engine (eng
# below) and no other configuration: "-engine" makes the engine the default
# for everything, and file keys then fail with it
engine_cnf=$dir/openssl.cnf
pki_cnf=$top/scripts/pki.cnf     # the PKI extensions of scripts/make-pki.sh
export OPENSSL_CONF="$pki_cnf"

if [ -e "$dir/ready" ] \
   && softhsm2-util --show-slots 2>/dev/null | grep -q "Label: *$LABEL *$"; then
    echo "SOFTHSM2_CONF=$conf"
    exit 0
fi

rm -rf "$dir"
mkdir -p "$dir/tokens"
chmod 0755 "$dir"
log=$dir/setup.log
: > "$log"

run() {
    if ! "$@" >>"$log" 2>&1 </dev/null; then
        say "failed: $*"
        cat "$log" >&2
        exit 1
    fi
}

cat > "$conf" <<CONF
directories.tokendir = $dir/tokens
objectstore.backend = file
log.level = ERROR
slots.removable = false
CONF
chmod 0644 "$conf"

cat > "$engine_cnf" <<CONF
openssl_conf = init
[ init ]
engines = engines
[ engines ]
pkcs11 = pkcs11
[ pkcs11 ]
engine_id = pkcs11
dynamic_path = $enginesdir/pkcs11.so
MODULE_PATH = $module
init = 0
CONF


(umask 077 && printf '%s\n' "$PIN" > "$dir/pin")

run softhsm2-util --init-token --free --label "$LABEL" --pin "$PIN" \
    --so-pin "$SO_PIN"
for k in ca:01 next:02 inter:03; do
    run pkcs11-tool --module "$module" --token-label "$LABEL" --login \
        --pin "$PIN" --keypairgen --key-type rsa:2048 --label "${k%%:*}" \
        --id "${k##*:}"
done

# openssl with the pkcs11 engine
eng() {
    run env OPENSSL_CONF="$engine_cnf" openssl "$@"
}
uri() {
    echo "pkcs11:token=$LABEL;object=$1;type=private;pin-value=$PIN"
}
serial() {
    printf '0x%s' "$(openssl rand -hex 16 | sed 's/^[89a-f]/7/')"
}
o="/O=mod_scep test PKI"

# self-signed CA certificates of token keys
eng req -config "$pki_cnf" -new -x509 -sha256 -days 3650 \
    -set_serial "$(serial)" -engine pkcs11 -keyform engine -key "$(uri ca)" \
    -subj "$o/CN=SCEP Token CA" -extensions root_ext -out "$dir/ca.pem"
eng req -config "$pki_cnf" -new -x509 -sha256 -days 3650 \
    -set_serial "$(serial)" -engine pkcs11 -keyform engine -key "$(uri next)" \
    -subj "$o/CN=SCEP Token CA (next)" -extensions root_ext \
    -out "$dir/nextca.pem"

# the CA certificate in the token too (CAEngineCertificate engine:...)
run openssl x509 -in "$dir/ca.pem" -outform DER -out "$dir/ca.der"
run pkcs11-tool --module "$module" --token-label "$LABEL" --login \
    --pin "$PIN" --write-object "$dir/ca.der" --type cert --label ca \
    --id 01
rm -f "$dir/ca.der"

# a root in files, and an intermediate CA for the token key "inter"
(umask 077 && run openssl genpkey -algorithm RSA \
    -pkeyopt rsa_keygen_bits:2048 -out "$dir/root.key")
run openssl req -new -x509 -sha256 -days 3650 -set_serial "$(serial)" \
    -key "$dir/root.key" -subj "$o/CN=SCEP Token Root" -extensions root_ext \
    -out "$dir/root.pem"
eng req -config "$pki_cnf" -new -sha256 -engine pkcs11 -keyform engine \
    -key "$(uri inter)" -subj "$o/CN=SCEP Token Intermediate CA" \
    -out "$dir/inter.csr"
run openssl x509 -req -sha256 -days 1825 -set_serial "$(serial)" \
    -in "$dir/inter.csr" -CA "$dir/root.pem" -CAkey "$dir/root.key" \
    -extfile "$pki_cnf" -extensions inter_ext -out "$dir/inter.pem"
cp "$dir/root.pem" "$dir/chain.pem"

# the RA: its key in a file, its certificate signed by the token CA
(umask 077 && run openssl genpkey -algorithm RSA \
    -pkeyopt rsa_keygen_bits:2048 -out "$dir/ra.key")
run openssl req -new -sha256 -key "$dir/ra.key" \
    -subj "$o/CN=SCEP Token RA" -out "$dir/ra.csr"
eng x509 -req -sha256 -days 730 -set_serial "$(serial)" \
    -in "$dir/ra.csr" -CA "$dir/ca.pem" -engine pkcs11 -CAkeyform engine \
    -CAkey "$(uri ca)" -extfile "$pki_cnf" -extensions ra_ext \
    -out "$dir/ra.pem"
rm -f "$dir/inter.csr" "$dir/ra.csr"

run openssl verify -CAfile "$dir/ca.pem" "$dir/ca.pem" "$dir/ra.pem"
run openssl verify -CAfile "$dir/root.pem" "$dir/inter.pem"

chmod 0644 "$dir"/*.pem
if [ "$(id -u)" -eq 0 ]; then
    chown -R "$hsm_user" "$dir/tokens"
fi
date > "$dir/ready"
say "token $LABEL ready in $dir"
echo "SOFTHSM2_CONF=$conf"
