# mod_ca_ldap against a real slapd: requests authorised by a directory
# entry's challenge password (/scep-ldap) or by binding as the entry
# (/scep-ldap-bind, /scep-ldap-anon), and the issued certificates stored in
# the entry. Every refusal is a signed FAILURE badRequest with HTTP 200,
# logged with its reason at warn; no password ever reaches the error log.

use strict;
use warnings FATAL => 'all';

use Apache::Test;
use Apache::TestRequest;
use Apache::TestUtil;
use ScepTest qw(pki_file p7_fingerprints fingerprint fingerprint_pem_file);
use ScepClient qw(have_client error_log_clean);
use LdapTest;

plan tests => 92,
    need need_module('scep', 'ca_simple'), have_client(),
         LdapTest::requirements();

my $ldap = LdapTest->new;
ok $ldap->start;

my $c = ScepClient->new;
my $wrong = LdapTest::WRONG;
my $dev = 'ou=devices,dc=example,dc=org';
my $cert_attr = 'userCertificate;binary';

# a SUCCESS, whose certificate the entry now holds
sub issued {
    my($e, $label) = @_;
    t_debug("$label: HTTP $e->{code} " . ScepClient::describe($e->{rep}));
    ok t_cmp($e->{code}, 200, "$label: HTTP 200");
    ok t_cmp($e->{rep}->{pkiStatus}, 'SUCCESS', "$label: SUCCESS");
    return LdapTest::pem_file_der($e->{rep}->{cert_file});
}

# a signed FAILURE badRequest, logged with this reason
sub refused {
    my($e, $label, $reason) = @_;
    t_debug("$label: HTTP $e->{code} " . ScepClient::describe($e->{rep}));
    t_debug("$label: log: $e->{log}");
    ok t_cmp($e->{code}, 200, "$label: HTTP 200, not an HTTP error");
    ok t_cmp($e->{rep}->{pkiStatus}, 'FAILURE', "$label: FAILURE");
    ok t_cmp($e->{rep}->{failInfo}, 'badRequest', "$label: badRequest");
    ok t_cmp($e->{log}, $reason, "$label: the reason is logged");
}

# ---- challenge attribute (/scep-ldap) --------------------------------

my $d1 = "uid=device1,$dev";
my $e = LdapTest::enrol($c, '/scep-ldap', 'device1', 'chal-device1-Zq81');
my $der1 = issued($e, 'device1, right challenge');
ok t_cmp(ScepClient::verifies($e->{rep}->{cert_file}, pki_file('ca.pem')),
         1, 'device1: the certificate verifies against the CA');
my @stored = $ldap->attr_values($d1, $cert_attr);
ok t_cmp(scalar @stored, 1, 'device1: one certificate in the entry');
ok defined $der1 && @stored && $stored[0] eq $der1;
ok t_cmp($e->{log}, qr/CA04017: transaction \S+: authorised by \Q$d1\E/,
         'device1: authorisation logged with the entry');
ok t_cmp($e->{log}, qr/CA04023: .*stored certificate serial [0-9a-f]+ in \Q$d1\E/,
         'device1: storage logged');

# CALdapStoreMode add (the default): the second one joins the first
$e = LdapTest::enrol($c, '/scep-ldap', 'device1', 'chal-device1-Zq81');
my $der2 = issued($e, 'device1 again');
@stored = sort $ldap->attr_values($d1, $cert_attr);
ok t_cmp(scalar @stored, 2, 'device1: two certificates in the entry');
ok defined $der2 && join('', @stored) eq join('', sort $der1, $der2);

$e = LdapTest::enrol($c, '/scep-ldap', 'device1', $wrong);
refused($e, 'device1, wrong challenge',
        qr/CA04016: .*refused for \Q$d1\E: the challenge password is wrong/);
ok t_cmp(scalar(my @x = $ldap->attr_values($d1, $cert_attr)), 2,
         'device1: nothing stored for the refused request');

$e = LdapTest::enrol($c, '/scep-ldap', 'device1', undef);
refused($e, 'device1, no challenge',
        qr/CA04012: .*refused: the request carries no challenge password/);

$e = LdapTest::enrol($c, '/scep-ldap', 'nosuchdevice', 'chal-device1-Zq81');
refused($e, 'unknown CN',
        qr/CA04014: .*refused: no entry matches \(&\(objectClass=scepDevice\)\(uid=nosuchdevice\)\)/);

# found by uid, but the CN is not a cn of the entry
$e = LdapTest::enrol($c, '/scep-ldap', 'mismatch1', 'chal-mismatch1-Zq87');
refused($e, 'subject CN not the entry\'s cn',
        qr/CA04015: .*the subject CN 'mismatch1' is not a value of cn of uid=mismatch1/);

# uid matches regardless of case, the CN must match exactly
$e = LdapTest::enrol($c, '/scep-ldap', 'DEVICE1', 'chal-device1-Zq81');
refused($e, 'subject CN in other case',
        qr/CA04015: .*the subject CN 'DEVICE1' is not a value of cn/);

$e = LdapTest::enrol($c, '/scep-ldap', 'dup1', 'chal-dup1-Zq88');
refused($e, 'two entries', qr/CA04014: .*refused: more than one entry matches/);

$e = LdapTest::enrol($c, '/scep-ldap', 'nochal1', 'chal-device1-Zq81');
refused($e, 'entry without a challenge password',
        qr/CA04016: .*refused for uid=nochal1,\Q$dev\E: the entry has no scepChallengePassword/);

# filter injection: the CN is a value, never filter syntax; unescaped,
# "*" would find every device and "x)(uid=device1" the first one (the
# error log doubles every backslash)
$e = LdapTest::enrol($c, '/scep-ldap', '*', 'chal-device1-Zq81');
refused($e, 'CN "*"', qr/no entry matches \(&\(objectClass=scepDevice\)\(uid=\\\\2a\)\)/);
$e = LdapTest::enrol($c, '/scep-ldap', 'x)(uid=device1', 'chal-device1-Zq81');
refused($e, 'CN with parentheses',
        qr/no entry matches \(&\(objectClass=scepDevice\)\(uid=x\\\\29\\\\28uid=device1\)\)/);

# UTF-8: the CN reaches the filter escaped byte by byte, the directory
# finds the entry, the CN matches its cn exactly
my $geraet = "ger\xc3\xa4t1";
$e = LdapTest::enrol($c, '/scep-ldap', $geraet, 'chal-geraet1-Zq92');
my $derg = issued($e, 'CN beyond ASCII');
ok t_cmp($e->{log}, qr/CA04017: .*authorised by uid=ger/,
         'CN beyond ASCII: authorised');
@stored = $ldap->attr_values("uid=$geraet,$dev", $cert_attr);
ok defined $derg && @stored == 1 && $stored[0] eq $derg;

# ---- bind as the entry (/scep-ldap-bind) -----------------------------

my $b1 = "uid=bind1,$dev";
$e = LdapTest::enrol($c, '/scep-ldap-bind', 'bind1', 'bindpw-bind1-Zq90');
my $derb = issued($e, 'bind1, right password');
my $anchors = ScepTest::spit($c->dir . '/inter-chain.pem',
    join '', map { ScepTest::slurp(pki_file($_)) // '' } qw(inter.pem chain.pem));
ok t_cmp(ScepClient::verifies($e->{rep}->{cert_file}, $anchors), 1,
         'bind1: issued by the intermediate CA');
@stored = $ldap->attr_values($b1, $cert_attr);
ok t_cmp(scalar @stored, 1, 'bind1: one certificate stored');
ok defined $derb && @stored && $stored[0] eq $derb;

# the PKCS#7: the certificate and the chain of the issuing CA
my @p7 = $ldap->attr_values($b1, 'userSMIMECertificate');
ok t_cmp(scalar @p7, 1, 'bind1: one PKCS#7 stored');
my @want = sort(fingerprint($derb), fingerprint_chain());
ok t_cmp(join(' ', p7_fingerprints($p7[0] // '')), join(' ', @want),
         'bind1: the PKCS#7 holds the certificate and the chain');

# CALdapStoreMode replace: only the newest one stays
$e = LdapTest::enrol($c, '/scep-ldap-bind', 'bind1', 'bindpw-bind1-Zq90');
my $derb2 = issued($e, 'bind1 again');
@stored = $ldap->attr_values($b1, $cert_attr);
ok t_cmp(scalar @stored, 1, 'bind1: still one certificate (replaced)');
ok defined $derb2 && @stored && $stored[0] eq $derb2;
ok t_cmp(scalar(@p7 = $ldap->attr_values($b1, 'userSMIMECertificate')), 1,
         'bind1: still one PKCS#7');

$e = LdapTest::enrol($c, '/scep-ldap-bind', 'bind1', $wrong);
refused($e, 'bind1, wrong password',
        qr/CA04016: .*refused for \Q$b1\E: binding as the entry with the challenge password failed: Invalid credentials/);

# an entry with no password cannot be bound to at all
$e = LdapTest::enrol($c, '/scep-ldap-bind', 'device1', 'chal-device1-Zq81');
refused($e, 'device1 in bind mode (no userPassword)',
        qr/CA04016: .*refused for \Q$d1\E: binding as the entry/);

# the pooled connection went back to the service identity: storing works
$e = LdapTest::enrol($c, '/scep-ldap-bind', 'bind1', 'bindpw-bind1-Zq90');
issued($e, 'bind1 after refusals');

# ---- anonymous connection, no storage (/scep-ldap-anon) --------------

my $b2 = "uid=bind2,$dev";
$e = LdapTest::enrol($c, '/scep-ldap-anon', 'bind2', 'bindpw-bind2-Zq91');
issued($e, 'bind2 (anonymous), right password');
$e = LdapTest::enrol($c, '/scep-ldap-anon', 'bind2', $wrong);
refused($e, 'bind2 (anonymous), wrong password', qr/CA04016: .*Invalid credentials/);
$e = LdapTest::enrol($c, '/scep-ldap-anon', 'bind2', 'bindpw-bind2-Zq91');
issued($e, 'bind2 (anonymous) again');
ok t_cmp(scalar(@x = $ldap->attr_values($b2, $cert_attr)), 0,
         'bind2: CALdapCertificateAttribute none stores nothing');

# ---- storage that fails (/scep-ldap-nostore) -------------------------

$e = LdapTest::enrol($c, '/scep-ldap-nostore', 'nostore1',
                     'chal-nostore1-Zq89');
refused($e, 'storage refused by the directory',
        qr/CA04007: .*storing the certificate in uid=nostore1,\Q$dev\E failed: Insufficient access/);
ok t_cmp($e->{rep}->{failInfoText} // '', qr/could not be stored/,
         'nostore1: the client is told the certificate was not stored');
ok t_cmp(scalar(@x = $ldap->attr_values("uid=nostore1,$dev",
                                         'userPKCS12')), 0,
         'nostore1: nothing stored');

# ---- the log -----------------------------------------------------------

my $log = LdapTest::error_log_since(0);
my @leaked = LdapTest->secrets_in($log);
ok t_cmp("@leaked", '', 'no password in the error log');
ok t_cmp(error_log_clean(), '', 'no crashed child in error_log');

sub fingerprint_chain {
    my $pem = ScepTest::slurp(pki_file('chain.pem')) // '';
    return map { fingerprint($_) }
        $pem =~ /(-----BEGIN CERTIFICATE-----.*?-----END CERTIFICATE-----\n?)/gs;
}
