# GetCACert (RFC 8894 4.2, draft-nourse CA+RA form): a degenerate certs-only
# PKCS#7 with exactly the CA and the RA certificates, Content-Type
# application/x-x509-ca-ra-cert, cacheable for a while. With an
# intermediate CA its chain is included. GetNextCACert (RFC 8894 4.7):
# a signed PKCS#7 whose content is a degenerate PKCS#7 with the rollover
# certificates; 404 without rollover. Plus the HTTP-level errors.

use strict;
use warnings FATAL => 'all';

use Apache::Test;
use Apache::TestRequest;
use Apache::TestUtil;
use ScepTest qw(:all);

my @messages = (undef, '', 'Device%20Management%20Identity%20Certificate');

plan tests => 5 * @messages     # /scep GetCACert
            + 5                 # /scep-chain
            + 3                 # /scep-fresh
            + 6                 # GetNextCACert on /scep-next
            + 1                 # GetNextCACert on /scep
            + 5,                # errors, OPTIONS
    need_module('scep', 'ca_simple');

my %fp = map { $_ => fingerprint_pem_file(pki_file("$_.pem")) }
    qw(ca ra nextca nextra root2 inter);

sub names {
    my %by_fp = reverse %fp;
    return join ' ', sort map { $by_fp{$_} // "unknown:$_" } @_;
}

sub getcacert {
    my($loc, $msg) = @_;
    my $url = "$loc?operation=GetCACert";
    $url .= "&message=$msg" if defined $msg;
    my $res = GET $url;
    t_debug("GET $url -> " . $res->status_line);
    return ($url, $res);
}

# ------------------------------------------------------------- GetCACert

for my $msg (@messages) {
    my($url, $res) = getcacert('/scep', $msg);
    ok t_cmp($res->code, 200, "$url: status");
    ok t_cmp(scalar $res->header('Content-Type'),
             'application/x-x509-ca-ra-cert', "$url: Content-Type");
    my @certs = p7_certs($res->content);
    ok t_cmp(scalar @certs, 2, "$url: two certificates");
    ok t_cmp(names(map { fingerprint($_) } @certs), 'ca ra',
             "$url: the CA and the RA certificate");
    my $age = max_age($res);
    t_debug('Cache-Control: ' . ($res->header('Cache-Control') // 'none'));
    ok defined $age && $age > 0 && $age <= 86400;
}

{
    my($url, $res) = getcacert('/scep-chain');
    ok t_cmp($res->code, 200, "$url: status");
    ok t_cmp(scalar $res->header('Content-Type'),
             'application/x-x509-ca-ra-cert', "$url: Content-Type");
    my @certs = p7_certs($res->content);
    ok t_cmp(scalar @certs, 3, "$url: three certificates");
    ok t_cmp(names(map { fingerprint($_) } @certs), 'inter ra root2',
             "$url: the issuing CA, its chain and the RA certificate");
    my $age = max_age($res);
    ok defined $age && $age > 0;
}

{
    my($url, $res) = getcacert('/scep-fresh');
    ok t_cmp($res->code, 200, "$url: status");
    my $age = max_age($res);
    t_debug('Cache-Control: ' . ($res->header('Cache-Control') // 'none'));
    ok defined $age;
    ok defined $age && $age > 0 && $age <= 3600;
}

# --------------------------------------------------------- GetNextCACert

{
    my $url = '/scep-next?operation=GetNextCACert';
    my $res = GET $url;
    t_debug("GET $url -> " . $res->status_line);
    ok t_cmp($res->code, 200, "$url: status");
    ok t_cmp(scalar $res->header('Content-Type'),
             'application/x-x509-next-ca-cert', "$url: Content-Type");

    # the signature must verify; the signer may be the current CA or the RA
    # (RFC 8894 4.7.1: "the current CA (or RA) signing key"), whether or
    # not the response carries the signer's certificate
    my $dir = scratch_dir();
    my $in = spit("$dir/next.der", $res->content);
    my $bundle = spit("$dir/signers.pem",
                      join '', map { slurp(pki_file("$_.pem")) } qw(ca ra));
    my $r = run_cmd('openssl', 'cms', '-verify', '-inform', 'DER',
                    '-in', $in, '-noverify', '-certfile', $bundle,
                    '-binary', '-out', "$dir/content.der",
                    '-signer', "$dir/signer.pem");
    t_debug("$r->{cmd}: $r->{err}");
    ok t_cmp($r->{rc}, 0, "$url: signature verifies");

    my $signer = fingerprint(slurp("$dir/signer.pem") // '');
    ok t_cmp(names($signer // 'none'), qr/^(?:ca|ra)$/,
             "$url: signed by the current CA or RA");

    my @certs = p7_certs(slurp("$dir/content.der") // '');
    ok t_cmp(scalar @certs, 2, "$url: content holds two certificates");
    ok t_cmp(names(map { fingerprint($_) } @certs), 'nextca nextra',
             "$url: the next CA and the next RA certificate");
}

{
    my $url = '/scep?operation=GetNextCACert';
    my $res = GET $url;
    t_debug("GET $url -> " . $res->status_line);
    ok t_cmp($res->code, 404, "$url: no rollover certificate: 404");
}

# ---------------------------------------------------------------- errors

{
    my $res = GET '/scep?operation=NoSuchOperation';
    ok t_cmp($res->code, 400, 'unknown operation: 400');

    $res = GET '/scep';
    ok t_cmp($res->code, 400, 'missing operation: 400');

    $res = PUT '/scep?operation=PKIOperation', content => 'x';
    ok t_cmp($res->code, 405, 'PUT: 405');

    $res = OPTIONS '/scep-loc';
    t_debug('OPTIONS /scep-loc -> ' . $res->status_line . "\n"
            . $res->content);
    ok t_cmp($res->code, 200, 'OPTIONS /scep-loc: 200');
    my $body = $res->content // '';
    ok $body =~ /^\s*<\?xml|<application\b/
        && $body =~ m{\Qhttp://scep.example.org/scep\E};
}
