# What an operator or a broken disk may leave behind: corrupt, truncated,
# oversized and symlinked files are logged and treated as absent, never a
# crash; a transaction reused with another key is refused; and the
# approval tool refuses what it must and recovers from a run that died.

use strict;
use warnings FATAL => 'all';

use Apache::Test;
use Apache::TestUtil;
use File::Copy ();
use File::Spec::Functions qw(catfile);
use ScepTest qw(:all);
use CaDiskTest qw(:all);

plan tests => 37,
    need need_module('scep', 'ca_simple'),
         { 'mod_ca_disk not built or locations not configured' =>
               \&have_ca_disk };

my $dir = scratch_dir();
my $error_log = catfile(Apache::Test::vars('t_logs'), 'error_log');

# what the error log got since the last call
my $log_pos = -s $error_log // 0;
sub new_log {
    open my $fh, '<', $error_log or return '';
    seek $fh, $log_pos, 0;
    local $/;
    my $text = <$fh> // '';
    $log_pos = tell $fh;
    close $fh;
    return $text;
}

my $certs = disk_dir('certs');
sub by_tid { catfile($certs, 'by-transaction', tid_hash(shift) . '.pem') }

# ---- a corrupt certificate under a transaction's name
my $c = new_client(dir => $dir, name => 'corrupt');
spit(by_tid($c->{tid}), "-----BEGIN CERTIFICATE-----\nMIIB\n");
new_log();
my $r = certpoll($c, '/scep-disk');
ok t_cmp($r->{pkiStatus}, 'FAILURE', 'CertPoll with a corrupt certificate');
ok t_cmp($r->{failInfo}, 'badCertId', 'is answered as not found');
ok t_cmp(new_log(), qr/CA03010: ignoring a corrupt certificate file/,
         'and the corrupt file is logged');
$r = pkcsreq($c, '/scep-disk');
ok t_cmp($r->{pkiStatus}, 'PENDING', 'a PKCSReq is saved all the same');
ok -f request_file($c->{tid});
unlink by_tid($c->{tid});
my $a = approve(request_file($c->{tid}));
ok t_cmp($a->{rc}, 0, 'and can be approved');
$r = certpoll($c, '/scep-disk');
ok t_cmp($r->{pkiStatus}, 'SUCCESS', 'after which CertPoll succeeds');

# ---- an oversized file, a symbolic link
my $big = new_client(dir => $dir, name => 'big');
spit(by_tid($big->{tid}), 'x' x (300 * 1024));
$r = certpoll($big, '/scep-disk');
ok t_cmp($r->{failInfo}, 'badCertId', 'an oversized file is not read');
ok t_cmp(new_log(), qr/CA03010: .*not a regular file of at most/,
         'and is logged');
unlink by_tid($big->{tid});

my $link = new_client(dir => $dir, name => 'link');
symlink by_tid($c->{tid}), by_tid($link->{tid}) or die "symlink: $!";
$r = certpoll($link, '/scep-disk');
ok t_cmp($r->{failInfo}, 'badCertId', 'a symbolic link is not followed');
ok t_cmp(new_log(), qr/CA03010: .*is a symbolic link/, 'and is logged');
unlink by_tid($link->{tid});

# ---- a truncated certificate under an issuer and serial
my $s = new_client(dir => $dir, name => 'serial');
$r = pkcsreq($s, '/scep-store');
my $serial = $r->{cert} ? cert_serial($r->{cert}) : 'none';
my($by_serial) = glob(catfile(disk_dir('store'), 'by-serial', '*',
                              "$serial.pem"));
ok $by_serial && -f $by_serial;
my $pem = slurp($by_serial // '/nonexistent') // '';
spit($by_serial, substr($pem, 0, length($pem) / 2)) if $by_serial;
$r = getcert($s, '/scep-store', $serial);
ok t_cmp($r->{failInfo}, 'badCertId', 'GetCert of a truncated file');
ok t_cmp(new_log(), qr/CA03041: ignoring a corrupt certificate file/,
         'is logged and answered as not found');
spit($by_serial, $pem) if $by_serial;
$r = getcert($s, '/scep-store', $serial);
ok t_cmp($r->{pkiStatus}, 'SUCCESS', 'and found again once repaired');

# a certificate stored under another serial's name is not handed out
my $wrong = ($serial =~ /^7/ ? '6' : '7') . substr($serial, 1);
my $wrong_file = catfile((File::Spec->splitpath($by_serial // '/x/x'))[1],
                         "$wrong.pem");
spit($wrong_file, $pem);
$r = getcert($s, '/scep-store', $wrong);
ok t_cmp($r->{failInfo}, 'badCertId', 'a misplaced certificate is not found');
ok t_cmp(new_log(), qr/CA03043: ignoring /, 'and is logged');
unlink $wrong_file;

# ---- a corrupt pending request
my $p = new_client(dir => $dir, name => 'badreq');
spit(request_file($p->{tid}), "\x30\x82\x01");
$r = certpoll($p, '/scep-disk');
ok t_cmp($r->{failInfo}, 'badCertId', 'CertPoll of a corrupt request');
ok t_cmp(new_log(), qr/CA03044: ignoring a corrupt pending request/,
         'is logged and answered as not found');
$r = pkcsreq($p, '/scep-disk');
ok t_cmp($r->{pkiStatus}, 'PENDING', 'a PKCSReq replaces the corrupt file');
my $rq = run_cmd('openssl', 'req', '-inform', 'DER', '-noout', '-in',
                 request_file($p->{tid}));
ok t_cmp($rq->{rc}, 0, 'which now holds the request');

# ---- the same transaction with another key
my $k = new_client(dir => $dir, name => 'otherkey', tid => $p->{tid});
$r = pkcsreq($k, '/scep-disk');
ok t_cmp($r->{pkiStatus}, 'FAILURE',
         'a pending transaction reused with another key');
ok t_cmp($r->{failInfo}, 'badRequest', 'is refused');
ok t_cmp(new_log(), qr/CA03026: .*another key is pending/, 'and logged');

# ---- the approval tool
my $list = run_cmd(sign_tool(), '-r', disk_dir('requests'), '--list');
ok t_cmp($list->{out}, qr/^\Q${\ tid_hash($p->{tid}) }\E\.der\s.*CN=badreq-/m,
         '--list shows the pending request and its subject');

my $u = run_cmd(sign_tool(), '-r', disk_dir('requests'));
ok t_cmp($u->{rc}, 2, 'a usage error exits 2');
$u = run_cmd(sign_tool(), '-c', pki_file('ca.pem'), '-k', pki_file('ra.key'),
             '-r', disk_dir('requests'), '-o', $certs, '--all');
ok t_cmp($u->{rc}, 1, 'a key that is not the CA key is refused');
ok t_cmp($u->{err}, qr/does not match/, 'saying so');
$u = approve('0' x 64);
ok t_cmp($u->{rc}, 1, 'an unknown request fails');
$u = approve('-e', 'subjectAltName DNS:x.example', request_file($p->{tid}));
ok t_cmp($u->{rc}, 1, 'a subjectAltName extension is refused');

$a = approve(request_file($p->{tid}));
ok t_cmp($a->{rc}, 0, 'the request is approved');
my $first = $a->{out} =~ /issued serial ([0-9a-f]+)/ ? $1 : 'none';
$u = approve(request_file($p->{tid}));
ok t_cmp($u->{rc}, 1, 'approving it twice fails: nothing pending');

# a run that died after writing the certificate: the request is pending
# again, the certificate exists; the tool completes without a new serial
File::Copy::copy(catfile(disk_dir('requests'), 'done',
                         tid_hash($p->{tid}) . '.der'),
                 request_file($p->{tid}));
$a = approve(request_file($p->{tid}));
ok t_cmp($a->{out}, qr/issued already, serial \Q$first\E/,
         'a request whose certificate exists is not signed again');
ok !-e request_file($p->{tid});

# as root, files go to the User httpd runs as (who owns the directories)
SKIP: {
    skip 'not running as root', 2 unless $> == 0;
    my @d = stat by_tid($p->{tid});
    my @o = stat $certs;
    ok t_cmp("$d[4]:$d[5]", "$o[4]:$o[5]",
             'the certificate belongs to the owner of the directory');
    ok t_cmp(sprintf('%o', $d[2] & 07777), '600', 'mode 0600');
}

# nothing of this crashed a child
ok t_cmp(new_log(), qr/^(?!.*(?:Segmentation|exit signal|AH00052))/s,
         'no child died');
