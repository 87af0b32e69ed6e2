# GetCACert, GetNextCACert and GetCACaps through mod_ca_engine: the CA
# certificate handed out is the one of the token key (read from a file, or
# from the token itself), with the RA; an intermediate CA comes with its
# chain; GetNextCACert answers from CAEngineNextCertificate; where
# mod_ca_simple also has a CA, the engine's is the one announced.

use strict;
use warnings FATAL => 'all';

use Apache::Test;
use Apache::TestRequest;
use Apache::TestUtil;
use ScepTest qw(:all);
use EngineTest;

plan tests => 4 * 4 + 2 + 6 + 3, need EngineTest::requirements();

my %fp = map { $_ => fingerprint_pem_file(EngineTest::token_file("$_.pem")) }
    qw(ca ra nextca inter root);
$fp{'file CA (t/pki)'} = fingerprint_pem_file(pki_file('ca.pem'));

sub names {
    my %by_fp = reverse %fp;
    return join ' ', sort map { $by_fp{$_} // "unknown:$_" } @_;
}

# [ location, the certificates GetCACert must hold ]
my @cases = (
    [ '/scep-engine',       'ca ra' ],
    [ '/scep-engine-token', 'ca ra' ],
    [ '/scep-engine-chain', 'inter ra root' ],
    [ '/scep-engine-mixed', 'ca ra' ],
);
for my $case (@cases) {
    my($loc, $want) = @$case;
    my $res = GET "$loc?operation=GetCACert";
    t_debug("GET $loc?operation=GetCACert -> " . $res->status_line);
    ok t_cmp($res->code, 200, "$loc: GetCACert status");
    ok t_cmp(scalar $res->header('Content-Type'),
             'application/x-x509-ca-ra-cert', "$loc: Content-Type");
    my @certs = p7_certs($res->content);
    ok t_cmp(names(map { fingerprint($_) } @certs), $want,
             "$loc: the certificates");
    ok defined max_age($res);
}

# the CA certificate's key is the token's key "ca" (pkcs11-tool reads the
# public half; the private half never leaves the token)
{
    my $dir = scratch_dir();
    my $r = run_cmd('pkcs11-tool', '--module', EngineTest::MODULE_PATH,
                    '--token-label', 'scep', '--read-object', '--type',
                    'pubkey', '--label', 'ca', '-o', "$dir/pub.der");
    t_debug("$r->{cmd}: $r->{err}");
    my $k = run_cmd('openssl', 'pkey', '-pubin', '-inform', 'DER', '-in',
                    "$dir/pub.der");
    ok t_cmp($k->{rc}, 0, 'the public key of token key "ca" is readable');
    ok t_cmp(cert_pubkey(EngineTest::token_file('ca.pem')) // '', $k->{out},
             'the CA certificate carries the token key');
}

# GetNextCACert: a signed PKCS#7 around the next CA certificate
{
    my $url = '/scep-engine?operation=GetNextCACert';
    my $res = GET $url;
    t_debug("GET $url -> " . $res->status_line);
    ok t_cmp($res->code, 200, "$url: status");
    ok t_cmp(scalar $res->header('Content-Type'),
             'application/x-x509-next-ca-cert', "$url: Content-Type");
    my $dir = scratch_dir();
    my $in = spit("$dir/next.der", $res->content);
    my $bundle = spit("$dir/signers.pem", join '', map {
        slurp(EngineTest::token_file("$_.pem")) } qw(ca ra));
    my $r = run_cmd('openssl', 'cms', '-verify', '-inform', 'DER',
                    '-in', $in, '-noverify', '-certfile', $bundle,
                    '-binary', '-out', "$dir/content.der");
    t_debug("$r->{cmd}: $r->{err}");
    ok t_cmp($r->{rc}, 0, "$url: signature verifies");
    my @certs = p7_certs(slurp("$dir/content.der") // '');
    ok t_cmp(names(map { fingerprint($_) } @certs), 'nextca',
             "$url: the next CA certificate");

    $res = GET '/scep-engine-token?operation=GetNextCACert';
    ok t_cmp($res->code, 404, 'no CAEngineNextCertificate: 404');
    $res = GET '/scep-engine-chain?operation=GetNextCACert';
    ok t_cmp($res->code, 404, 'no CAEngineNextCertificate (chain): 404');
}

# GetCACaps announces GetNextCACert only where there is one
{
    my @caps = caps_list(GET_BODY '/scep-engine?operation=GetCACaps');
    ok t_cmp(scalar(grep { $_ eq 'GetNextCACert' } @caps), 1,
             '/scep-engine: GetNextCACert announced');
    @caps = caps_list(GET_BODY '/scep-engine-token?operation=GetCACaps');
    ok t_cmp(scalar(grep { $_ eq 'GetNextCACert' } @caps), 0,
             '/scep-engine-token: no GetNextCACert');
    ok t_cmp(scalar(grep { $_ eq 'POSTPKIOperation' } @caps), 1,
             '/scep-engine-token: POSTPKIOperation');
}
