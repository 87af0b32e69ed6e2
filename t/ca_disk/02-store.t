# Certificate storage on /scep-store: mod_ca_simple signs at once and
# mod_ca_disk keeps every certificate, by transaction and by issuer and
# serial; GetCert and CertPoll find it there.

use strict;
use warnings FATAL => 'all';

use Apache::Test;
use Apache::TestUtil;
use File::Spec::Functions qw(catfile);
use ScepTest qw(:all);
use CaDiskTest qw(:all);

plan tests => 19,
    need need_module('scep', 'ca_simple'),
         { 'mod_ca_disk not built or /scep-store not configured' =>
               \&have_ca_disk };

my $dir = scratch_dir();
my $c = new_client(dir => $dir, name => 'store');

# ---- enrol: SUCCESS at once, and stored
my $r = pkcsreq($c, '/scep-store');
ok t_cmp($r->{pkiStatus}, 'SUCCESS', 'PKCSReq on /scep-store is SUCCESS');
ok $r->{cert} && -s $r->{cert};
my $v = run_cmd('openssl', 'verify', '-CAfile', pki_file('ca.pem'),
                $r->{cert} // '/nonexistent');
ok t_cmp($v->{out}, qr/: OK$/m, 'the certificate verifies against the CA');
my $serial = cert_serial($r->{cert} // '/nonexistent') // '';
my $fp = fingerprint_pem_file($r->{cert});
t_debug("serial $serial");

my $by_tid = catfile(disk_dir('store'), 'by-transaction',
                     tid_hash($c->{tid}) . '.pem');
ok -f $by_tid;
ok t_cmp(fingerprint_pem_file($by_tid), $fp,
         'stored by transaction: the certificate issued');
my @by_serial = glob(catfile(disk_dir('store'), 'by-serial', '*',
                             "$serial.pem"));
ok t_cmp(scalar @by_serial, 1, 'stored once by issuer and serial');
ok t_cmp(fingerprint_pem_file($by_serial[0] // $by_tid), $fp,
         'the same certificate');
my @st = stat $by_tid;
ok t_cmp(sprintf('%o', $st[2] & 07777), '600', 'the file is private (0600)');
ok !-e request_file($c->{tid});

# ---- GetCert by issuer and serial
my $g = new_client(dir => $dir, name => 'getter');
$r = getcert($g, '/scep-store', $serial);
ok t_cmp($r->{pkiStatus}, 'SUCCESS', 'GetCert by issuer and serial');
ok t_cmp($r->{cert} ? fingerprint_pem_file($r->{cert}) : '', $fp,
         'returns the same certificate');

# a serial this CA never issued is not found
(my $other = $serial) =~ s/.$/$& eq '0' ? '1' : '0'/e;
$r = getcert($g, '/scep-store', $other);
ok t_cmp($r->{pkiStatus}, 'FAILURE', 'GetCert of an unknown serial');
ok t_cmp($r->{failInfo}, 'badCertId', 'fails with badCertId');

$r = getcert($g, '/scep-store', '7f' x 20);
ok t_cmp($r->{failInfo}, 'badCertId', 'another unknown serial: badCertId');

# ---- CertPoll of the transaction finds the certificate too
$r = certpoll($c, '/scep-store');
ok t_cmp($r->{pkiStatus}, 'SUCCESS', 'CertPoll on /scep-store');
ok t_cmp($r->{cert} ? fingerprint_pem_file($r->{cert}) : '', $fp,
         'returns the certificate of the transaction');

# ---- a new PKCSReq in the same transaction replaces the by-transaction
# certificate (the client has the newest); both stay by serial
$r = pkcsreq($c, '/scep-store');
ok t_cmp($r->{pkiStatus}, 'SUCCESS', 'PKCSReq again is signed again');
my $serial2 = cert_serial($r->{cert} // '/nonexistent') // '';
ok t_cmp(cert_serial($by_tid) // '', $serial2,
         'by transaction: the newest certificate');
ok t_cmp(scalar(() = glob(catfile(disk_dir('store'), 'by-serial', '*',
                                   "{$serial,$serial2}.pem"))), 2,
         'by serial: both');
