# A real SCEP client against a directory-authorised location: micromdm
# scepclient (Debian package scep) with -challenge enrols at /scep-ldap;
# the certificate it gets is the one stored in the device's entry. With a
# wrong challenge it gets no certificate.

use strict;
use warnings FATAL => 'all';

use Apache::Test;
use Apache::TestRequest;
use Apache::TestUtil;
use ScepTest qw(:all);
use ScepClient qw(error_log_clean);
use LdapTest;

plan tests => 10,
    need need_module('scep', 'ca_simple'), LdapTest::requirements(),
         { 'scepclient (package scep) not installed' =>
               sub { have_program('scepclient') } };

my $ldap = LdapTest->new;
ok $ldap->start;

my $dir = scratch_dir();
my $dn = 'uid=scepclient1,ou=devices,dc=example,dc=org';

# scepclient keeps its csr.pem and self.pem beside the key: a directory
# for each run
sub scepclient {
    my($name, $challenge) = @_;
    mkdir "$dir/$name";
    # a PENDING would make scepclient retry for ever: bound the run
    return run_cmd({ timeout => 60 },
        'scepclient',
        '-server-url', base_url('/scep-ldap'),
        '-private-key', "$dir/$name/client.key",
        '-certificate', "$dir/$name/client.pem",
        '-cn', 'scepclient1',
        '-organization', 'mod_ca_ldap tests',
        '-country', 'DE',
        '-challenge', $challenge,
        '-debug');
}

# wrong challenge first: no certificate, nothing stored
my $r = scepclient('wrong', LdapTest::WRONG);
t_debug("$r->{cmd}\nexit $r->{rc}\nstdout: $r->{out}\nstderr: $r->{err}");
ok $r->{rc} != 0 && $r->{rc} != 124;
ok !-s "$dir/wrong/client.pem";
ok t_cmp(scalar(my @x = $ldap->attr_values($dn, 'userCertificate;binary')),
         0, 'nothing stored for the wrong challenge');

$r = scepclient('right', 'chal-scepclient1-Zq85');
t_debug("$r->{cmd}\nexit $r->{rc}\nstdout: $r->{out}\nstderr: $r->{err}");
ok t_cmp($r->{rc}, 0, 'scepclient exits 0');
ok -s "$dir/right/client.pem";
my $v = run_cmd('openssl', 'verify', '-CAfile', pki_file('ca.pem'),
                "$dir/right/client.pem");
ok t_cmp($v->{rc}, 0, 'the certificate verifies against the CA');
ok t_cmp(cert_subject_cn("$dir/right/client.pem"), 'scepclient1', 'subject CN');

my @stored = $ldap->attr_values($dn, 'userCertificate;binary');
my $der = LdapTest::pem_file_der("$dir/right/client.pem");
ok t_cmp(scalar @stored, 1, 'one certificate stored');
ok defined $der && @stored && $stored[0] eq $der;
