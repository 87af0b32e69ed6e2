# mod_ca_ldap over TLS: CALdapStartTLS on, and ldaps:// URLs, to the test
# slapd, whose certificate the test CA (t/pki) issued. The trust settings
# are libldap's own (ldap.conf, or the LDAPTLS_* environment), so these
# run on httpd instances started here with LDAPTLS_CACERT set: one that
# trusts the test CA enrols over both; one that trusts another CA is
# refused cleanly, the failed handshake logged.

use strict;
use warnings FATAL => 'all';

use Apache::Test;
use Apache::TestRequest;
use Apache::TestUtil;
use File::Spec::Functions qw(catfile);
use ScepTest qw(pki_file top_dir);
use ScepClient qw(have_client);
use LdapTest;

plan tests => 17,
    need need_module('scep', 'ca_simple'), have_client(),
         LdapTest::requirements();

my $ldap = LdapTest->new;
ok $ldap->start;

my $so = LdapTest::module_file();
my $pw = catfile(top_dir(), 't', 'ldap', 'bind.pw');
my $plain = $ldap->url;
my $ldaps = $ldap->ldaps_url;

sub location {
    my($path, @ldap) = @_;
    my $pki = ScepTest::pki_dir();
    return join "\n",
        "<Location $path>",
        "    SetHandler scep",
        "    ScepRACertificate \"$pki/ra.pem\"",
        "    ScepRAKey \"$pki/ra.key\"",
        "    ScepSubjectRequest *",
        "    CASimpleCertificate \"$pki/ca.pem\"",
        "    CASimpleKey \"$pki/ca.key\"",
        "    CASimpleTime on",
        "    CASimpleSerialRandom on",
        (map { "    $_" } @ldap),
        "    CALdapBindDN cn=scep,ou=services,dc=example,dc=org",
        "    CALdapBindPasswordFile \"$pw\"",
        "    CALdapTimeout 3",
        "    CALdapBase dc=example,dc=org",
        '    CALdapFilter "(&(objectClass=scepDevice)(uid=%{env:SCEP_SUBJECT_CN}))"',
        "    CALdapChallengeAttribute scepChallengePassword",
        "</Location>", '';
}

my $body = qq(LoadModule ca_ldap_module "$so"\n)
    . location('/starttls', "CALdapURL $plain", 'CALdapStartTLS on')
    . location('/ldaps', "CALdapURL $ldaps");

sub httpd_trusting {
    my $ca = shift;
    my $h = LdapTest::Httpd->new(body => $body);
    local $ENV{LDAPTLS_CACERT} = $ca;
    local $ENV{LDAPTLS_REQCERT} = 'demand';
    return $h->start ? $h : undef;
}

my $c = ScepClient->new;
my $dn = 'uid=device1,ou=devices,dc=example,dc=org';

# trusting the test CA
my $h = httpd_trusting(pki_file('ca.pem'));
ok $h;
for my $path ('/starttls', '/ldaps') {
    my $e = LdapTest::enrol($c, $h->url($path), 'device1',
                            'chal-device1-Zq81');
    t_debug("$path: " . ScepClient::describe($e->{rep}));
    ok t_cmp($e->{rep}->{pkiStatus}, 'SUCCESS', "$path: SUCCESS");
    my $der = LdapTest::pem_file_der($e->{rep}->{cert_file}) // 'none';
    ok t_cmp(scalar(grep { $_ eq $der }
                    $ldap->attr_values($dn, 'userCertificate;binary')), 1,
             "$path: stored");
}
my $slog = $ldap->slapd_log;
ok t_cmp($slog, qr/op=\d+ STARTTLS/, 'slapd saw a StartTLS');
ok t_cmp($slog, qr/TLS established tls_ssf=\d+/, 'slapd established TLS');
ok t_cmp($h->error_log, qr/CA04023: .*stored certificate/,
         'the TLS server logged its storage');
$h->stop;

# trusting another CA: no handshake, no certificate
my $other = LdapTest::Httpd->new(body => $body);
{
    local $ENV{LDAPTLS_CACERT} = pki_file('root2.pem');
    local $ENV{LDAPTLS_REQCERT} = 'demand';
    ok $other->start;
}
for my $path ('/starttls', '/ldaps') {
    my $e = LdapTest::enrol($c, $other->url($path), 'device1',
                            'chal-device1-Zq81');
    t_debug("$path, untrusted: HTTP $e->{code} "
            . ScepClient::describe($e->{rep}));
    ok t_cmp($e->{code}, 200, "$path, untrusted: HTTP 200");
    ok t_cmp($e->{rep}->{pkiStatus}, 'FAILURE', "$path, untrusted: FAILURE");
}
my $olog = $other->error_log;
t_debug("untrusted error_log:\n$olog");
ok t_cmp($olog, qr/CA04006: .*cannot be reached \(StartTLS: /,
         'the failed StartTLS is logged');
ok t_cmp($olog, qr/CA04006: .*ldaps:.*cannot be reached/,
         'the failed ldaps:// connection is logged');
$other->stop;
ok t_cmp(join(' ', LdapTest->secrets_in($olog . $h->error_log)), '',
         'no password in the error logs');
