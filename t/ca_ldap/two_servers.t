# Two httpd instances with mod_ca_ldap share one directory: the test
# server, and a second httpd started here with the same modules and the
# same /scep-ldap configuration (t/conf/ca_ldap.last.conf) on another port.
# Each enrols devices and stores their certificates; the directory holds
# them all, each instance authorises from the directory as it is now (a
# challenge changed by ldapmodify counts at once, on both), and both store
# into the same entry.

use strict;
use warnings FATAL => 'all';

use Apache::Test;
use Apache::TestRequest;
use Apache::TestUtil;
use File::Spec::Functions qw(catfile);
use ScepClient qw(have_client error_log_clean);
use LdapTest;

plan tests => 32,
    need need_module('scep', 'ca_simple'), have_client(),
         LdapTest::requirements();

my $ldap = LdapTest->new;
ok $ldap->start;

my $conf = catfile(Apache::Test::vars('t_conf'), 'ca_ldap.last.conf');
my $b = LdapTest::Httpd->new(body => qq(Include "$conf"\n));
my $t = $b->configtest;
t_debug("second httpd -t: $t->{err}");
ok t_cmp($t->{rc}, 0, 'the second configuration passes httpd -t');
ok $b->start;

my $c = ScepClient->new;
my $dev = 'ou=devices,dc=example,dc=org';
my $attr = 'userCertificate;binary';

sub issued {
    my($e, $label) = @_;
    t_debug("$label: HTTP $e->{code} " . ScepClient::describe($e->{rep}));
    ok t_cmp($e->{rep}->{pkiStatus}, 'SUCCESS', "$label: SUCCESS");
    return LdapTest::pem_file_der($e->{rep}->{cert_file}) // 'none';
}

sub refused {
    my($e, $label) = @_;
    t_debug("$label: HTTP $e->{code} " . ScepClient::describe($e->{rep}));
    ok t_cmp($e->{code}, 200, "$label: HTTP 200");
    ok t_cmp($e->{rep}->{pkiStatus}, 'FAILURE', "$label: FAILURE");
}

# A (the test server) enrols device2, B device3
my $a2 = issued(LdapTest::enrol($c, '/scep-ldap', 'device2',
                                'chal-device2-Zq82'), 'A: device2');
my $b3 = issued(LdapTest::enrol($c, $b->url('/scep-ldap'), 'device3',
                                'chal-device3-Zq83'), 'B: device3');
my @s2 = $ldap->attr_values("uid=device2,$dev", $attr);
my @s3 = $ldap->attr_values("uid=device3,$dev", $attr);
ok t_cmp(scalar @s2, 1, 'device2: one certificate, from A');
ok $s2[0] && $s2[0] eq $a2;
ok t_cmp(scalar @s3, 1, 'device3: one certificate, from B');
ok $s3[0] && $s3[0] eq $b3;

# both enrol device2 again: three certificates in the one entry
my $b2 = issued(LdapTest::enrol($c, $b->url('/scep-ldap'), 'device2',
                                'chal-device2-Zq82'), 'B: device2');
my $a2b = issued(LdapTest::enrol($c, '/scep-ldap', 'device2',
                                 'chal-device2-Zq82'), 'A: device2 again');
@s2 = sort $ldap->attr_values("uid=device2,$dev", $attr);
ok t_cmp(scalar @s2, 3, 'device2: three certificates, from A and B');
ok t_cmp(join('', @s2), join('', sort $a2, $b2, $a2b),
         'device2: exactly the three issued');

# every stored certificate, found by a search over all devices
my @all = $ldap->search($dev, '(userCertificate;binary=*)', 'uid');
ok t_cmp(join(' ', sort map { $_->{uid}->[0] } @all), 'device2 device3',
         'the directory lists the devices both instances enrolled');

# a new challenge for device3, set in the directory: both use it at once
my $r = $ldap->modify(<<'EOF');
dn: uid=device3,ou=devices,dc=example,dc=org
changetype: modify
replace: scepChallengePassword
scepChallengePassword: chal-device3-Zq83-new
EOF
ok t_cmp($r->{rc}, 0, 'ldapmodify: new challenge for device3');
refused(LdapTest::enrol($c, $b->url('/scep-ldap'), 'device3',
                        'chal-device3-Zq83'), 'B: device3, old challenge');
refused(LdapTest::enrol($c, '/scep-ldap', 'device3', 'chal-device3-Zq83'),
        'A: device3, old challenge');
issued(LdapTest::enrol($c, '/scep-ldap', 'device3',
                       'chal-device3-Zq83-new'), 'A: device3, new challenge');
issued(LdapTest::enrol($c, $b->url('/scep-ldap'), 'device3',
                       'chal-device3-Zq83-new'), 'B: device3, new challenge');
ok t_cmp(scalar(my @x = $ldap->attr_values("uid=device3,$dev", $attr)), 3,
         'device3: three certificates');

# bind mode works on B too
issued(LdapTest::enrol($c, $b->url('/scep-ldap-bind'), 'bind1',
                       'bindpw-bind1-Zq90'), 'B: bind1');
refused(LdapTest::enrol($c, $b->url('/scep-ldap-bind'), 'bind1',
                        LdapTest::WRONG), 'B: bind1, wrong password');

# B's log: the reasons, no secrets, no crashes
my $blog = $b->error_log;
t_debug("second httpd error_log:\n$blog");
ok t_cmp($blog, qr/CA04023: .*stored certificate serial \S+ in uid=device3/,
         'B logged its storage');
ok t_cmp($blog, qr/CA04016: .*refused for uid=device3,\Q$dev\E: the challenge password is wrong/,
         'B logged the refusal');
ok t_cmp(join(' ', LdapTest->secrets_in($blog)), '',
         'no password in the second error_log');
ok t_cmp(index($blog, 'chal-device3-Zq83-new'), -1,
         'not even the new challenge');
ok t_cmp(scalar(grep { /AH0005[12]|Segmentation fault/ }
                split /\n/, $blog), 0, 'no crashed child in B');
$b->stop;

ok t_cmp(error_log_clean(), '', 'no crashed child in error_log');
my @leaked = LdapTest->secrets_in(LdapTest::error_log_since(0));
ok t_cmp("@leaked", '', 'no password in the error log');
