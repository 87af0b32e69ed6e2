#!/bin/sh
# make-pki.sh [-f] [-v] DIR
#
# Creates a demo / test PKI for the SCEP modules with the openssl CLI
# (RSA 2048, SHA-256):
#
#   ca.pem     ca.key      self-signed root, 10 years
#   ra.pem     ra.key      RA certificate signed by ca (digitalSignature +
#                          keyEncipherment, what Apple clients need), 2 years
#   nextca.pem nextca.key  a second root, for CA rollover (GetNextCACert)
#   nextra.pem nextra.key  RA certificate signed by nextca
#   root2.pem  root2.key   root of a two-level hierarchy, for chain tests
#   inter.pem  inter.key   intermediate CA signed by root2
#   chain.pem              the certificates above inter (root2 only)
#
# Does nothing when DIR/ca.pem exists, unless -f is given. Private keys are
# mode 0600. Prints nothing but errors unless -v is given.

set -eu

force=0
verbose=0
usage() {
    echo "usage: $0 [-f] [-v] DIR" >&2
    exit 2
}
while getopts fvh opt; do
    case "$opt" in
    f) force=1 ;;
    v) verbose=1 ;;
    *) usage ;;
    esac
done
shift $((OPTIND - 1))
[ $# -eq 1 ] || usage
dir=$1

say() {
    [ "$verbose" -eq 0 ] || echo "make-pki: $*"
}

if [ -e "$dir/ca.pem" ] && [ "$force" -eq 0 ]; then
    say "$dir/ca.pem exists, nothing to do (use -f to recreate)"
    exit 0
fi

command -v openssl >/dev/null 2>&1 || {
    echo "make-pki: openssl not found" >&2
    exit 1
}

mkdir -p "$dir"
chmod 0755 "$dir"
work=$(mktemp -d "$dir/.make-pki.XXXXXX")
log="$work/openssl.log"
trap 'rm -rf "$work"' EXIT
trap 'exit 1' HUP INT TERM

# our own OpenSSL configuration, not the system's (see the file)
cnf="$(cd "$(dirname "$0")" && pwd)/pki.cnf"
[ -r "$cnf" ] || {
    echo "make-pki: $cnf not found" >&2
    exit 1
}

ossl() {
    if ! openssl "$@" >>"$log" 2>&1; then
        echo "make-pki: openssl $1 failed:" >&2
        cat "$log" >&2
        exit 1
    fi
}

serial() {
    # 128 random bits, top bit cleared so that the INTEGER stays positive
    # and 16 bytes long at most
    printf '0x%s' "$(openssl rand -hex 16 | sed 's/^[89a-f]/7/')"
}

newkey() {
    (umask 077 && ossl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 \
        -out "$work/$1.key")
}

# root NAME SUBJECT DAYS
root() {
    say "creating $1 (self-signed, $3 days): $2"
    newkey "$1"
    ossl req -config "$cnf" -new -x509 -sha256 -days "$3" \
        -set_serial "$(serial)" -key "$work/$1.key" -subj "$2" \
        -extensions root_ext -out "$work/$1.pem"
}

# issue NAME SUBJECT DAYS ISSUER EXTENSIONS
issue() {
    say "creating $1 (signed by $4, $3 days): $2"
    newkey "$1"
    ossl req -config "$cnf" -new -sha256 -key "$work/$1.key" \
        -subj "$2" -out "$work/$1.csr"
    ossl x509 -req -sha256 -days "$3" -in "$work/$1.csr" \
        -CA "$work/$4.pem" -CAkey "$work/$4.key" -set_serial "$(serial)" \
        -extfile "$cnf" -extensions "$5" -out "$work/$1.pem"
    rm -f "$work/$1.csr"
}

o="/O=mod_scep test PKI"
root   ca     "$o/CN=SCEP Test CA"                  3650
issue  ra     "$o/CN=SCEP Test RA"                   730 ca     ra_ext
root   nextca "$o/CN=SCEP Test CA (next)"           3650
issue  nextra "$o/CN=SCEP Test RA (next)"            730 nextca ra_ext
root   root2  "$o/CN=SCEP Test Root 2"              3650
issue  inter  "$o/CN=SCEP Test Intermediate CA"     1825 root2  inter_ext
cp "$work/root2.pem" "$work/chain.pem"

ossl verify -CAfile "$work/ca.pem" "$work/ra.pem"
ossl verify -CAfile "$work/nextca.pem" "$work/nextra.pem"
ossl verify -CAfile "$work/root2.pem" "$work/inter.pem"

chmod 0600 "$work"/*.key
chmod 0644 "$work"/*.pem

# ca.pem goes last: its presence marks a complete PKI
for f in ra nextca nextra root2 inter; do
    mv -f "$work/$f.key" "$dir/$f.key"
    mv -f "$work/$f.pem" "$dir/$f.pem"
done
mv -f "$work/chain.pem" "$dir/chain.pem"
mv -f "$work/ca.key" "$dir/ca.key"
mv -f "$work/ca.pem" "$dir/ca.pem"
say "PKI ready in $dir"
