# mod_ca_ldap under concurrent requests: several clients at once, in both
# authorisation modes, share each child's connection pool (and, in bind
# mode, rebind its connections between uses). Every right request is
# issued and stored, every wrong one refused, nothing crashes, and the
# directory holds exactly the certificates handed out.

use strict;
use warnings FATAL => 'all';

use Apache::Test;
use Apache::TestRequest;
use Apache::TestUtil;
use File::Path ();
use POSIX ();
use ScepClient qw(have_client error_log_clean);
use LdapTest;

my $clients = 8;
my $each = 6;

plan tests => 7,
    need need_module('scep', 'ca_simple'), have_client(),
         LdapTest::requirements();

my $ldap = LdapTest->new;
ok $ldap->start;

my $dev = 'ou=devices,dc=example,dc=org';
my @before = $ldap->attr_values("uid=device2,$dev", 'userCertificate;binary');

# each client: a line per request, "<kind> <pkiStatus> <hex DER>"
my @pipes;
for my $n (1 .. $clients) {
    pipe(my $r, my $w) or die "pipe: $!";
    my $pid = fork;
    die "fork: $!" unless defined $pid;
    if ($pid == 0) {
        close $r;
        my $c = ScepClient->new;
        for my $i (1 .. $each) {
            my $req = (
                [ 'attr-right', '/scep-ldap', 'device2', 'chal-device2-Zq82' ],
                [ 'bind-right', '/scep-ldap-bind', 'bind2',
                  'bindpw-bind2-Zq91' ],
                [ 'attr-wrong', '/scep-ldap', 'device2', LdapTest::WRONG ],
                [ 'bind-wrong', '/scep-ldap-bind', 'bind2',
                  LdapTest::WRONG ],
            )[($n + $i) % 4];
            my($kind, $path, $cn, $chal) = @$req;
            my $e = eval { LdapTest::enrol($c, $path, $cn, $chal) };
            my $status = $e ? $e->{rep}->{pkiStatus} // 'none' : 'died';
            my $der = $e ? LdapTest::pem_file_der($e->{rep}->{cert_file})
                         : undef;
            print $w "$kind $status ", unpack('H*', $der // ''), "\n";
        }
        close $w;
        File::Path::remove_tree($c->dir) unless $ENV{SCEP_TEST_KEEP};
        POSIX::_exit(0);        # not the END blocks: slapd is the parent's
    }
    close $w;
    push @pipes, [ $pid, $r ];
}

my(%count, @attr_issued);
for my $p (@pipes) {
    my($pid, $r) = @$p;
    while (my $line = <$r>) {
        chomp $line;
        my($kind, $status, $hex) = split / /, $line, 3;
        $count{"$kind $status"}++;
        push @attr_issued, pack('H*', $hex)
            if $kind eq 'attr-right' && $status eq 'SUCCESS';
    }
    waitpid $pid, 0;
}
t_debug(join ', ', map { "$_: $count{$_}" } sort keys %count);

my $total = $clients * $each;
my $right = ($count{'attr-right SUCCESS'} // 0)
          + ($count{'bind-right SUCCESS'} // 0);
my $wrong = ($count{'attr-wrong FAILURE'} // 0)
          + ($count{'bind-wrong FAILURE'} // 0);
ok t_cmp($right + $wrong, $total, 'every request answered as it should be');
ok t_cmp($right, $total / 2, 'every right challenge issued');

my @after = $ldap->attr_values("uid=device2,$dev", 'userCertificate;binary');
ok t_cmp(scalar @after, @before + @attr_issued,
         'device2 holds every certificate issued to it');
my %stored = map { $_ => 1 } @after;
ok t_cmp(scalar(grep { !$stored{$_} } @attr_issued), 0,
         'each of them exactly');
ok t_cmp(error_log_clean(), '', 'no crashed child in error_log');
my @leaked = LdapTest->secrets_in(LdapTest::error_log_since(0));
ok t_cmp("@leaked", '', 'no password in the error log');
