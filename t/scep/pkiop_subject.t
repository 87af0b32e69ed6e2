# The certificate's subject and subjectAltName are rebuilt from the
# ScepSubject* / ScepSubjectAltName* directives, never copied blindly
# (mod_scep manual, "Subjects and Subject Alternative Names"):
#   /scep         ScepSubjectRequest * and ScepSubjectAltNameRequest *:
#                 everything the CSR asks for
#   /scep-mixed   O "Example Org" set, at most 1 CN and 2 dNSName from the
#                 request, rfc822Name %{REMOTE_ADDR}@example.org set;
#                 anything else asked for is dropped, more than the limit
#                 is refused (FAILURE badRequest)
#   /scep-set     Basic auth; CN = the user, OU "Terms and Conditions
#                 Apply", whatever the CSR asked
#   /scep-none    no ScepSubject* at all: nothing may be issued
# The certificate subject is compared as a set of attributes; the order
# mod_scep gives them is shown in the debug output.

use strict;
use warnings FATAL => 'all';

use Apache::Test;
use Apache::TestRequest;
use Apache::TestUtil;
use ScepTest qw(pki_file);
use ScepClient qw(have_client error_log_clean);

my $user = 'scepuser';          # t/conf/htpasswd
my $password = 'sceptest';

plan tests => 7 * 3 + 9 * 3 + 3 + 2,
    need('scep', 'ca_simple', have_client());

my $c = ScepClient->new;

# "/O=x/CN=y" as a sorted, comparable list
sub name_set {
    my $name = shift // '';
    return join ' | ', sort grep { length } split m{/}, $name;
}

sub san_set {
    my $san = shift // '';
    return join ' | ', sort grep { length } split /,/, $san;
}

# 7 tests: a SUCCESS with exactly this subject and these SANs
sub issued_ok {
    my($label, $res, $req, $subject, $san) = @_;
    t_debug("$label -> " . $res->status_line);
    ok t_cmp($res->code, 200, "$label: HTTP status");
    my $rep = $c->reply($res, $req);
    t_debug(ScepClient::describe($rep));
    ok t_cmp($rep->{rc}, 0, "$label: the CertRep parses and opens");
    ok t_cmp($rep->{pkiStatus}, 'SUCCESS', "$label: pkiStatus");
    ok t_cmp($rep->{signerIsRA}, 1, "$label: signed by the RA");
    ok t_cmp($rep->{nonceOk}, 1, "$label: recipientNonce");
    ok t_cmp(name_set($rep->{certSubject}), name_set($subject),
             "$label: subject");
    ok t_cmp(san_set($rep->{certSAN}), ref $san ? $san : san_set($san),
             "$label: subjectAltName");
}

# 9 tests: a signed FAILURE with this failInfo and no envelope
sub refused_ok {
    my($label, $res, $req, $fail) = @_;
    t_debug("$label -> " . $res->status_line);
    ok t_cmp($res->code, 200, "$label: HTTP status");
    ok t_cmp(scalar $res->header('Content-Type'),
             'application/x-pki-message', "$label: Content-Type");
    my $rep = $c->reply($res, $req);
    t_debug(ScepClient::describe($rep));
    ok t_cmp($rep->{rc}, 0, "$label: the CertRep parses");
    ok t_cmp($rep->{pkiStatus}, 'FAILURE', "$label: pkiStatus");
    ok t_cmp($rep->{failInfo}, $fail, "$label: failInfo");
    ok t_cmp($rep->{signatureOk}, 1, "$label: signature verifies");
    ok t_cmp($rep->{signerIsRA}, 1, "$label: signed by the RA");
    ok t_cmp($rep->{nonceOk}, 1, "$label: recipientNonce");
    ok t_cmp($rep->{envelope}, 'absent', "$label: no pkcsPKIEnvelope");
}

# ---- /scep: everything passes through
{
    my $subject = '/C=DE/O=Pass Org/OU=Unit/CN=pass.example.org';
    my $san = 'DNS:pass.example.org,DNS:www.pass.example.org,'
            . 'email:pass@example.org,IP:192.0.2.7,'
            . 'URI:https://pass.example.org/';
    my $req = $c->request(subject => $subject, san => $san);
    issued_ok('/scep pass-through', $c->post('/scep', $req), $req,
              $subject, $san);
}

# ---- /scep-mixed
{
    my $req = $c->request(
        subject => '/CN=mixed.example.org/OU=Engineering/O=Evil Corp',
        san => 'DNS:a.example.org,DNS:b.example.org,DNS:c.example.org,'
             . 'email:x@example.org');
    refused_ok('/scep-mixed, three dNSNames', $c->post('/scep-mixed', $req),
               $req, 'badRequest');
}
{
    my $req = $c->request(subject => '/CN=one.example.org/CN=two.example.org');
    refused_ok('/scep-mixed, two CNs', $c->post('/scep-mixed', $req), $req,
               'badRequest');
}
{
    my $req = $c->request(subject => '/CN=mixed.example.org/OU=Engineering',
                          san => 'DNS:a.example.org,DNS:b.example.org');
    # the rfc822Name comes from REMOTE_ADDR: 127.0.0.1 or ::1
    my $dns = 'DNS:a.example.org | DNS:b.example.org';
    my $want = qr/^\Q$dns\E \| email:(?:127\.0\.0\.1|::1)\@example\.org$/;
    issued_ok('/scep-mixed', $c->post('/scep-mixed', $req), $req,
              '/O=Example Org/CN=mixed.example.org', $want);
}

# ---- /scep-set: the subject comes from the login
{
    my $req = $c->request(subject => '/CN=evil.example.org/O=Evil Corp');
    issued_ok('/scep-set as scepuser',
              $c->post('/scep-set', $req, username => $user,
                       password => $password),
              $req, "/CN=$user/OU=Terms and Conditions Apply", '');

    my $res = $c->post('/scep-set', $req);
    t_debug('/scep-set without credentials -> ' . $res->status_line);
    ok t_cmp($res->code, 401, '/scep-set without credentials: 401');
    $res = $c->post('/scep-set', $req, username => $user,
                    password => 'wrong');
    t_debug('/scep-set, wrong password -> ' . $res->status_line);
    ok t_cmp($res->code, 401, '/scep-set with a wrong password: 401');
}

# ---- /scep-none: nothing configured, nothing issued
{
    my $req = $c->request(subject => '/CN=none.example.org');
    refused_ok('/scep-none', $c->post('/scep-none', $req), $req,
               'badRequest');
}

# ---- GET on /scep-set needs the login too
{
    my $req = $c->request(subject => '/CN=get.example.org');
    my $res = $c->get('/scep-set', $req, 'rfc');
    ok t_cmp($res->code, 401, '/scep-set GET without credentials: 401');
}

# still alive
my $res = GET '/scep?operation=GetCACaps';
ok t_cmp($res->code, 200, 'GetCACaps still answers');
ok t_cmp(error_log_clean(), '', 'no crashed child in error_log');
