# mod_ca_ldap when the directory goes away: a stopped slapd makes requests
# fail cleanly (a signed FAILURE badRequest, HTTP 200, the reason logged at
# error), and once it is back the next requests succeed on new connections
# without restarting httpd. A slapd that accepts connections but never
# answers (SIGSTOP) costs at most the configured timeouts, never a hung
# request.

use strict;
use warnings FATAL => 'all';

use Apache::Test;
use Apache::TestRequest;
use Apache::TestUtil;
use Time::HiRes ();
use ScepClient qw(have_client error_log_clean);
use LdapTest;

my $rounds = 6;     # more than one child and thread hold a pooled connection

plan tests => 20 + 6 * $rounds,
    need need_module('scep', 'ca_simple'), have_client(),
         LdapTest::requirements();

my $ldap = LdapTest->new;
ok $ldap->start;

my $c = ScepClient->new;
my $dn = 'uid=restart1,ou=devices,dc=example,dc=org';
my $chal = 'chal-restart1-Zq84';
my $issued = 0;

sub success {
    my($label) = @_;
    my $e = LdapTest::enrol($c, '/scep-ldap', 'restart1', $chal);
    t_debug("$label: HTTP $e->{code} " . ScepClient::describe($e->{rep}));
    t_debug("$label: log: $e->{log}") if $e->{rep}->{pkiStatus} ne 'SUCCESS';
    ok t_cmp($e->{code}, 200, "$label: HTTP 200");
    ok t_cmp($e->{rep}->{pkiStatus}, 'SUCCESS', "$label: SUCCESS");
    $issued++ if $e->{rep}->{pkiStatus} eq 'SUCCESS';
    return $e;
}

sub failure {
    my($label) = @_;
    my $e = LdapTest::enrol($c, '/scep-ldap', 'restart1', $chal);
    t_debug("$label: HTTP $e->{code} " . ScepClient::describe($e->{rep}));
    ok t_cmp($e->{code}, 200, "$label: HTTP 200, not a 5xx");
    ok t_cmp($e->{rep}->{pkiStatus}, 'FAILURE', "$label: FAILURE");
    ok t_cmp($e->{rep}->{failInfo}, 'badRequest', "$label: badRequest");
    return $e;
}

# fill the connection pools of the children
for my $i (1 .. $rounds) {
    my $e = success("before the restart, $i");
    ok t_cmp($e->{log}, qr/CA04023: .*stored certificate/, "stored, $i");
}
ok t_cmp(scalar(my @x = $ldap->attr_values($dn, 'userCertificate;binary')),
         $issued, 'every certificate stored');

# the directory is down
$ldap->stop;
my $e = failure('directory down');
ok t_cmp($e->{log}, qr/\[ca_ldap:error\].*CA04006: transaction \S+: the directory ldap:\/\/127\.0\.0\.1:\d+\/ cannot be reached/,
         'directory down: logged at error');
ok t_cmp($e->{log}, qr/CA01020: .*not authorised \(503\)/,
         'directory down: the frontend was told 503');

# back again: every pooled connection is stale, each request heals itself
ok $ldap->start;
for my $i (1 .. $rounds) {
    success("after the restart, $i");
    ok 1;
}
ok t_cmp(scalar(@x = $ldap->attr_values($dn, 'userCertificate;binary')),
         $issued, 'every certificate stored, before and after the restart');
ok t_cmp(LdapTest::error_log_since(0),
         qr/CA04008: transaction \S+: connection to \S+ failed \(Can't contact LDAP server\), trying a new connection/,
         'a dead connection was replaced');

# frozen: connects, never answers. CALdapTimeout 3: a search on a pooled
# connection, then the retry's bind on a new one, each at most 3 seconds
$ldap->pause;
my $t0 = Time::HiRes::time();
$e = failure('directory frozen');
my $took = Time::HiRes::time() - $t0;
t_debug("frozen directory: $took seconds");
ok $took < 15;
ok t_cmp($e->{log}, qr/CA04006: .*cannot be reached .*Timed out/,
         'directory frozen: a timeout, logged');
$ldap->resume;

success('after the freeze');
ok 1;
ok t_cmp(error_log_clean(), '', 'no crashed child in error_log');
my @leaked = LdapTest->secrets_in(LdapTest::error_log_since(0));
ok t_cmp("@leaked", '', 'no password in the error log');
