# Enrolment with a real client, micromdm's scepclient (Debian package
# scep), through /scep-engine: it fetches GetCACaps and GetCACert (the token
# CA and the RA), sends its PKCSReq and writes the certificate, which the
# key in the token signed.

use strict;
use warnings FATAL => 'all';

use Apache::Test;
use Apache::TestRequest;
use Apache::TestUtil;
use ScepTest qw(:all);
use EngineTest;

plan tests => 7,
    need EngineTest::requirements(),
         { 'scepclient (package scep) not installed' =>
               sub { have_program('scepclient') } };

my $dir = scratch_dir();
my $key = "$dir/client.key";
my $crt = "$dir/client.pem";
my $cn  = "scepclient-engine-$$-" . time;

my $r = run_cmd({ timeout => 120 },
    'scepclient',
    '-server-url', base_url('/scep-engine'),
    '-private-key', $key,
    '-certificate', $crt,
    '-cn', $cn,
    '-organization', 'mod_ca_engine tests',
    '-country', 'DE',
    '-challenge', 'any-password',
    '-debug');
t_debug("$r->{cmd}\nexit $r->{rc}\nstdout: $r->{out}\nstderr: $r->{err}");

ok t_cmp($r->{rc}, 0, 'scepclient exits 0');
ok -s $crt;
ok t_cmp(EngineTest::verifies($crt, EngineTest::token_file('ca.pem')), 1,
         'the certificate verifies against the token CA');
ok t_cmp(EngineTest::verifies($crt, pki_file('ca.pem')), 0,
         'and not against the file CA of the other locations');
ok t_cmp(cert_subject_cn($crt), $cn, 'subject CN is the one asked for');
my $want = key_pubkey($key);
ok t_cmp(cert_pubkey($crt) // '', $want // 'none',
         "the certificate carries the client's public key");

my $res = GET '/scep-engine?operation=GetCACaps';
ok t_cmp($res->code, 200, 'GetCACaps still answers');
