# Enrolment with a real client: micromdm scepclient (Debian package scep,
# 2.1.0). It fetches GetCACaps and GetCACert, encrypts its PKCSReq to the
# certificates it got with single DES (so the server must decrypt DES
# through OpenSSL's legacy provider), POSTs it and writes the issued
# certificate. The certificate must chain to the CA, carry the CN asked for
# and the client's key.

use strict;
use warnings FATAL => 'all';

use Apache::Test;
use Apache::TestRequest;
use Apache::TestUtil;
use ScepTest qw(:all);
use File::Spec::Functions qw(catfile);

plan tests => 12,
    need need_module('scep', 'ca_simple'),
         { 'scepclient (package scep) not installed' =>
               sub { have_program('scepclient') } };

my $dir = scratch_dir();
my $key = "$dir/client.key";        # scepclient creates it
my $crt = "$dir/client.pem";        # must not exist: else RenewalReq
my $cn  = "scepclient-$$-" . time;

# PENDING makes scepclient sleep and retry for ever: bound the run
my $r = run_cmd({ timeout => 120 },
    'scepclient',
    '-server-url', base_url('/scep'),
    '-private-key', $key,
    '-certificate', $crt,
    '-cn', $cn,
    '-organization', 'mod_scep tests',
    '-ou', 'scepclient',
    '-country', 'DE',
    '-challenge', 'any-password',
    '-debug');
t_debug("$r->{cmd}\nexit $r->{rc}\nstdout: $r->{out}\nstderr: $r->{err}");

ok t_cmp($r->{rc}, 0, 'scepclient exits 0');
ok -s $crt;

my $v = run_cmd('openssl', 'verify', '-CAfile', pki_file('ca.pem'), $crt);
t_debug("$v->{cmd}: $v->{out}$v->{err}");
ok t_cmp($v->{rc}, 0, 'certificate verifies against the CA');
ok t_cmp($v->{out}, qr/: OK$/m, 'openssl verify says OK');

ok t_cmp(cert_subject_cn($crt), $cn, 'subject CN is the one asked for');

my $want = key_pubkey($key);
my $got  = cert_pubkey($crt);
ok defined $want && length $want;
ok t_cmp($got, $want, "certificate carries the client's public key");

# the server is still there and answering
my $res = GET '/scep?operation=GetCACaps';
ok t_cmp($res->code, 200, 'GetCACaps still answers after the enrolment');

# run again with the certificate it now has: scepclient sends a RenewalReq
# signed by it, and the server renews (the reply is encrypted to the old
# certificate, which is the only one scepclient can decrypt with)
my $old_serial = run_cmd('openssl', 'x509', '-in', $crt, '-noout',
                         '-serial')->{out};
$r = run_cmd({ timeout => 120 },
    'scepclient',
    '-server-url', base_url('/scep'),
    '-private-key', $key,
    '-certificate', $crt,
    '-cn', $cn,
    '-organization', 'mod_scep tests',
    '-ou', 'scepclient',
    '-country', 'DE',
    '-debug');
t_debug("$r->{cmd}\nexit $r->{rc}\nstdout: $r->{out}\nstderr: $r->{err}");
ok t_cmp($r->{rc}, 0, 'scepclient renewal exits 0');
# the server logs each answer with the request's messageType (CA01013)
my $log = slurp(catfile(Apache::Test::vars('t_logs'), 'error_log')) // '';
ok t_cmp($log, qr/CA01013: RenewalReq transaction \S+: SUCCESS/,
         'the server saw a RenewalReq and renewed');
my $new_serial = run_cmd('openssl', 'x509', '-in', $crt, '-noout',
                         '-serial')->{out};
ok $new_serial && $new_serial ne $old_serial;
$v = run_cmd('openssl', 'verify', '-CAfile', pki_file('ca.pem'), $crt);
ok t_cmp($v->{rc}, 0, 'renewed certificate verifies against the CA');
