# Deferred signing on /scep-disk: a PKCSReq is saved for approval and
# answered PENDING, however often it is sent; CertPoll stays PENDING until
# tools/ca-disk-sign approves it, then returns the certificate.  Unknown
# transactions get FAILURE badCertId.

use strict;
use warnings FATAL => 'all';

use Apache::Test;
use Apache::TestUtil;
use File::Spec::Functions qw(catfile);
use ScepTest qw(:all);
use CaDiskTest qw(:all);

plan tests => 32,
    need need_module('scep'),
         { 'mod_ca_disk not built or /scep-disk not configured' =>
               \&have_ca_disk };

my $dir = scratch_dir();
my $c = new_client(dir => $dir, name => 'pending');
my $file = request_file($c->{tid});

# ---- PKCSReq: saved, PENDING
my $r = pkcsreq($c, '/scep-disk');
ok t_cmp($r->{http}, 200, 'PKCSReq answered with HTTP 200');
ok t_cmp($r->{pkiStatus}, 'PENDING', 'PKCSReq is PENDING');
ok t_cmp($r->{transactionID}, $c->{tid}, 'the CertRep names the transaction');
ok t_cmp($r->{signatureOk}, 1, 'the CertRep is signed');
ok -f $file;
t_debug("request file $file");

my $rq = run_cmd('openssl', 'req', '-inform', 'DER', '-in', $file,
                 '-noout', '-subject', '-nameopt', 'RFC2253');
ok t_cmp($rq->{rc}, 0, 'the saved request is a DER PKCS#10');
ok t_cmp($rq->{out}, qr/CN=pending-$$/, 'with the subject asked for');
my @st1 = stat $file;

# ---- the same request again: PENDING, nothing written
my $before = scalar pending_files();
$r = pkcsreq($c, '/scep-disk');
ok t_cmp($r->{pkiStatus}, 'PENDING', 'the same transaction again is PENDING');
ok t_cmp(scalar pending_files(), $before, 'and no second request is saved');
my @st2 = stat $file;
ok t_cmp("$st2[1]/$st2[9]", "$st1[1]/$st1[9]",
         'the pending request file is untouched (same inode and mtime)');
my @same = grep { index($_, tid_hash($c->{tid})) >= 0 } pending_files();
ok t_cmp(scalar @same, 1, 'exactly one request file for the transaction');

# ---- CertPoll while pending
$r = certpoll($c, '/scep-disk');
ok t_cmp($r->{pkiStatus}, 'PENDING', 'CertPoll is PENDING before approval');
ok t_cmp($r->{transactionID}, $c->{tid}, 'CertPoll answer names the transaction');

# ---- approve
my $a = approve($file);
t_debug("$a->{cmd}\n$a->{out}$a->{err}");
ok t_cmp($a->{rc}, 0, 'ca-disk-sign approves the request');
ok t_cmp($a->{out}, qr/issued serial [0-9a-f]+, subject .*CN=pending-$$/,
         'and prints the serial and the subject');
ok !-e $file;
ok -f catfile(disk_dir('requests'), 'done', tid_hash($c->{tid}) . '.der');
my $by_tid = catfile(disk_dir('certs'), 'by-transaction',
                     tid_hash($c->{tid}) . '.pem');
ok -f $by_tid;

# ---- CertPoll after approval
$r = certpoll($c, '/scep-disk');
ok t_cmp($r->{pkiStatus}, 'SUCCESS', 'CertPoll after approval is SUCCESS');
ok $r->{cert} && -s $r->{cert};
my $v = run_cmd('openssl', 'verify', '-CAfile', pki_file('ca.pem'),
                $r->{cert} // '/nonexistent');
t_debug("$v->{cmd}: $v->{out}$v->{err}");
ok t_cmp($v->{out}, qr/: OK$/m, 'the certificate verifies against the CA');
ok t_cmp(cert_subject_cn($r->{cert}), "pending-$$",
         'its subject is the one requested');
ok t_cmp($r->{certKeyMatch}, 1, "it carries the client's key");
my $serial = cert_serial($r->{cert});
ok t_cmp($a->{out}, qr/serial \Q$serial\E/, 'the serial the tool printed');
ok t_cmp(fingerprint_pem_file($r->{cert}), fingerprint_pem_file($by_tid),
         'the certificate stored by transaction');

# ---- the PKCSReq sent once more now gets the certificate
$r = pkcsreq($c, '/scep-disk');
ok t_cmp($r->{pkiStatus}, 'SUCCESS', 'PKCSReq after approval is SUCCESS');
ok t_cmp(cert_serial($r->{cert} // '/nonexistent') // '', $serial,
         'with the certificate issued (no second one)');
ok !-e $file;

# ---- GetCert by issuer and serial on the same location
$r = getcert($c, '/scep-disk', $serial);
ok t_cmp($r->{pkiStatus}, 'SUCCESS', 'GetCert by issuer and serial');
ok t_cmp(cert_serial($r->{cert} // '/nonexistent') // '', $serial,
         'GetCert returns that certificate');

# ---- CertPoll for a transaction nobody started
my $u = new_client(dir => $dir, name => 'unknown');
$r = certpoll($u, '/scep-disk');
ok t_cmp($r->{pkiStatus}, 'FAILURE', 'CertPoll of an unknown transaction');
ok t_cmp($r->{failInfo}, 'badCertId', 'fails with badCertId');
