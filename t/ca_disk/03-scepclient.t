# A real client end to end against /scep-disk: micromdm scepclient (Debian
# package scep) gets PENDING, sleeps and polls; the operator approves with
# tools/ca-disk-sign while it waits, and its next poll collects the
# certificate.

use strict;
use warnings FATAL => 'all';

use Apache::Test;
use Apache::TestUtil;
use File::Spec::Functions qw(catfile);
use POSIX ();
use ScepTest qw(:all);
use CaDiskTest qw(:all);

plan tests => 8,
    need need_module('scep'),
         { 'mod_ca_disk not built or /scep-disk not configured' =>
               \&have_ca_disk },
         { 'scepclient (package scep) not installed' =>
               sub { have_program('scepclient') } };

my $dir = scratch_dir();
my $key = "$dir/client.key";
my $crt = "$dir/client.pem";
my $cn  = "scepclient-disk-$$-" . time;

# scepclient keeps a csr.pem in its working directory: give it its own
my $pid = fork;
die "fork: $!" unless defined $pid;
if ($pid == 0) {
    chdir $dir or POSIX::_exit(126);
    open STDIN, '<', '/dev/null';
    open STDOUT, '>', "$dir/out.log" or POSIX::_exit(126);
    open STDERR, '>', "$dir/err.log" or POSIX::_exit(126);
    # it sleeps 30 s after PENDING before it polls
    {
        no warnings 'exec';
        exec 'timeout', '-k', '5', '150', 'scepclient',
            '-server-url', base_url('/scep-disk'),
            '-private-key', $key, '-certificate', $crt,
            '-cn', $cn, '-organization', 'mod_ca_disk tests', '-debug';
    }
    POSIX::_exit(127);
}

# wait for its request to show up, then approve exactly that one
my $file;
for (1 .. 120) {
    my $l = run_cmd(sign_tool(), '-r', disk_dir('requests'), '--list');
    if ($l->{out} =~ /^([0-9a-f]{64}\.der)\s.*CN=\Q$cn\E/m) {
        $file = catfile(disk_dir('requests'), $1);
        last;
    }
    select undef, undef, undef, 0.25;
}
ok $file;
t_debug("scepclient's request: " . ($file // 'none'));

my $a = approve($file // 'none');
t_debug("$a->{cmd}\n$a->{out}$a->{err}");
ok t_cmp($a->{rc}, 0, 'ca-disk-sign approves it while scepclient waits');

waitpid $pid, 0;
my $rc = $? >> 8;
t_debug("scepclient exit $rc\n" . (slurp("$dir/err.log") // '')
        . (slurp("$dir/out.log") // ''));
ok t_cmp($rc, 0, 'scepclient polls, gets the certificate and exits 0');
ok -s $crt;

my $v = run_cmd('openssl', 'verify', '-CAfile', pki_file('ca.pem'), $crt);
t_debug("$v->{cmd}: $v->{out}$v->{err}");
ok t_cmp($v->{out}, qr/: OK$/m, 'the certificate verifies against the CA');
ok t_cmp(cert_subject_cn($crt), $cn, 'subject CN is the one asked for');
my $want = key_pubkey($key);
ok defined $want && length $want;
ok t_cmp(cert_pubkey($crt), $want, "certificate carries the client's key");
