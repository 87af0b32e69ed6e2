# PKCSReq through mod_ca_engine with the project's test client: the CertRep
# is a SUCCESS signed by the RA, and the certificate inside was signed by
# the key in the token (it verifies against the token CA's certificate),
# with the subject, SAN and public key of the request, a serial from
# CASimpleSerialRandom, the validity and extensions the location sets.
# Where mod_ca_simple also has a CA, the engine signs. Each issue is
# logged (CA05040) and the PIN is nowhere in the log.

use strict;
use warnings FATAL => 'all';

use Apache::Test;
use Apache::TestRequest;
use Apache::TestUtil;
use ScepTest qw(:all);
use ScepClient qw(error_log_clean);
use EngineTest;

my $ca    = EngineTest::token_file('ca.pem');
my $root  = EngineTest::token_file('root.pem');
my $inter = EngineTest::token_file('inter.pem');

# location, cipher, verify against (CAfile, untrusted), days, EKU, issuer CN
my @cases = (
    [ '/scep-engine',       'aes128', $ca,   undef,  365, 'TLS Web Client',
      'SCEP Token CA' ],
    [ '/scep-engine',       'des3',   $ca,   undef,  365, 'TLS Web Client',
      'SCEP Token CA' ],
    [ '/scep-engine-token', 'aes256', $ca,   undef,  365, 'TLS Web Client',
      'SCEP Token CA' ],
    [ '/scep-engine-chain', 'aes128', $root, $inter,  30, 'TLS Web Server',
      'SCEP Token Intermediate CA' ],
    [ '/scep-engine-mixed', 'aes128', $ca,   undef,  365, 'TLS Web Client',
      'SCEP Token CA' ],
);
my $per_case = 13;

plan tests => $per_case * @cases + 4, need EngineTest::requirements();

my $c = EngineTest::client();
my $log_from = EngineTest::error_log_size();
my %serials;
my $n = 0;

for my $case (@cases) {
    my($loc, $cipher, $cafile, $untrusted, $days, $eku, $issuer) = @$case;
    $n++;
    my $label = "$loc $cipher";
    my $cn = "engine-enrol-$n.example.org";
    my $e = EngineTest::enrol($c, $loc, cipher => $cipher,
                              subject => "/CN=$cn/O=mod_ca_engine tests",
                              san => "DNS:$cn,DNS:alt-$n.example.org");
    my $rep = $e->{rep};
    t_debug("$label: HTTP $e->{code} " . ScepClient::describe($rep));

    ok t_cmp($e->{code}, 200, "$label: HTTP 200");
    ok t_cmp($rep->{pkiStatus}, 'SUCCESS', "$label: SUCCESS");
    ok t_cmp($rep->{signerIsRA}, 1, "$label: signed by the RA");
    ok t_cmp($rep->{certKeyMatch} // 0, 1, "$label: our public key");
    ok t_cmp($rep->{certSubject} // '', "/CN=$cn/O=mod_ca_engine tests",
             "$label: subject");
    if ($loc eq '/scep-engine-mixed') {
        # no ScepSubjectAltNameRequest there: the frontend drops the SAN
        ok t_cmp($rep->{certSAN} // '', '', "$label: no subjectAltName");
    }
    else {
        ok t_cmp($rep->{certSAN} // '',
                 qr/DNS:\Q$cn\E.*DNS:alt-$n\.example\.org/,
                 "$label: subjectAltName copied");
    }
    my $file = $rep->{cert_file};
    ok t_cmp(EngineTest::verifies($file, $cafile, $untrusted), 1,
             "$label: verifies against the token CA");

    my $info = ($file && EngineTest::cert_info($file)) || {};
    t_debug("$label: $info->{text}") if $info->{text};
    ok t_cmp($info->{issuer} // '', qr/CN=\Q$issuer\E/, "$label: issuer");
    ok t_cmp(length($info->{serial} // ''), 40,
             "$label: a 20-byte serial from CASimpleSerialRandom");
    $serials{$info->{serial} // "none-$n"}++;
    my $secs = ($info->{notAfter} // 0) - ($info->{notBefore} // 0);
    ok t_cmp($secs, $days * 86400, "$label: valid for $days days");
    ok t_cmp($info->{text} // '', qr/\Q$eku\E/, "$label: extendedKeyUsage");
    ok t_cmp($info->{text} // '', qr/CA:FALSE/, "$label: not a CA");

    my $log = EngineTest::error_log_since($log_from);
    my $serial = lc($info->{serial} // 'none');
    ok t_cmp($log, qr/CA05040: issued serial \Q$serial\E to .*CN=\Q$cn\E.*with CAEngineKey pkcs11:token=scep;object=(?:ca|inter);type=private \(engine pkcs11\)/,
             "$label: the issue is logged");
}

# not signed by mod_ca_simple's file CA at /scep-engine-mixed
{
    my $e = EngineTest::enrol($c, '/scep-engine-mixed');
    ok t_cmp(EngineTest::verifies($e->{rep}->{cert_file},
                                  pki_file('ca.pem')), 0,
             '/scep-engine-mixed: not signed by CASimpleKey');
}

ok t_cmp(scalar(keys %serials), scalar(@cases), 'every serial differs');
ok t_cmp(error_log_clean(), '', 'no crashed child in error_log');
my $pin = EngineTest::pin();
ok defined $pin
    && index(EngineTest::error_log_since(0), $pin) < 0;
