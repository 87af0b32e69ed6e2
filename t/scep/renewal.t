# Renewal (RFC 8894 section 2.3): a RenewalReq, or a PKCSReq (as macOS
# and sscep send), signed by a certificate this CA issued is a renewal;
# the reply is encrypted to that old certificate. A RenewalReq signed by a
# self-signed certificate, and any request signed by a certificate of
# another CA, are refused with a signed FAILURE badRequest.

use strict;
use warnings FATAL => 'all';

use Apache::Test;
use Apache::TestRequest;
use Apache::TestUtil;
use ScepTest qw(pki_file run_cmd cert_subject caps_list);
use ScepClient qw(have_client error_log_clean);

plan tests => 25, need('scep', 'ca_simple', have_client());

my $c = ScepClient->new;
my $ca = pki_file('ca.pem');

# the first certificate of a reply, alone, to sign with
sub first_cert {
    my($rep, $name) = @_;
    my $out = $c->dir . "/$name.pem";
    my $r = run_cmd('openssl', 'x509', '-in', $rep->{cert_file},
                    '-out', $out);
    return $r->{rc} == 0 ? $out : undef;
}

# 1. an initial enrollment, signed by a self-signed certificate
my $first = $c->request(subject => '/CN=renew-me.example.org/O=mod_scep tests');
my $rep = $c->reply($c->post('/scep', $first), $first);
t_debug(ScepClient::describe($rep));
ok t_cmp($rep->{pkiStatus}, 'SUCCESS', 'initial enrollment succeeds');
my $old = first_cert($rep, 'old');
ok $old && ScepClient::verifies($old, $ca);

# 2. RenewalReq signed by the issued certificate, for a new key
my $renew = $c->request(type => 17, signer => $old,
                        signer_key => $first->{key},
                        subject => '/CN=renew-me.example.org/O=mod_scep tests');
$rep = $c->reply($c->post('/scep', $renew), $renew);
t_debug(ScepClient::describe($rep));
ok t_cmp($rep->{pkiStatus}, 'SUCCESS', 'RenewalReq signed by our cert');
ok t_cmp($rep->{signerIsRA}, 1, 'reply signed by the RA');
ok t_cmp($rep->{nonceOk}, 1, 'recipientNonce is our senderNonce');
# the tool opened the envelope with the old certificate and key
ok t_cmp($rep->{envelope}, 'present', 'reply carries an envelope');
ok t_cmp($rep->{rc}, 0, 'envelope opens with the old certificate');
ok t_cmp($rep->{certKeyMatch}, 1, 'new certificate holds the new key');
ok ScepClient::verifies($rep->{cert_file}, $ca);
ok t_cmp(cert_subject($rep->{cert_file}),
         qr/CN\s*=\s*renew-me\.example\.org/, 'subject kept');

# 3. PKCSReq signed by the issued certificate: macOS and sscep renew so
my $mac = $c->request(type => 19, signer => $old,
                      signer_key => $first->{key},
                      subject => '/CN=renew-me.example.org/O=mod_scep tests');
$rep = $c->reply($c->post('/scep', $mac), $mac);
t_debug(ScepClient::describe($rep));
ok t_cmp($rep->{pkiStatus}, 'SUCCESS', 'PKCSReq signed by our cert');
ok t_cmp($rep->{rc}, 0, 'envelope opens with the old certificate');
ok ScepClient::verifies($rep->{cert_file}, $ca);

# 4. RenewalReq signed by a self-signed certificate
my $selfren = $c->request(type => 17, subject => '/CN=not-renewal.example.org');
$rep = $c->reply($c->post('/scep', $selfren), $selfren);
t_debug(ScepClient::describe($rep));
ok t_cmp($rep->{pkiStatus}, 'FAILURE', 'self-signed RenewalReq refused');
ok t_cmp($rep->{failInfo}, 'badRequest', 'failInfo badRequest');
ok t_cmp($rep->{signatureOk}, 1, 'the FAILURE is signed');
ok t_cmp($rep->{envelope}, 'absent', 'a FAILURE carries no envelope');

# 5. signed by a certificate of another CA (the next RA, issued by the
#    next CA): neither self-signed nor ours
for my $type (19, 17) {
    my $other = $c->request(type => $type, signer => pki_file('nextra.pem'),
                            signer_key => pki_file('nextra.key'),
                            subject => '/CN=foreign.example.org');
    $rep = $c->reply($c->post('/scep', $other), $other);
    t_debug(ScepClient::describe($rep));
    ok t_cmp($rep->{pkiStatus}, 'FAILURE',
             "type $type signed by another CA's certificate refused");
    ok t_cmp($rep->{failInfo}, 'badRequest', 'failInfo badRequest');
}

# 6. GetCACaps says so
my $caps = GET_BODY('/scep?operation=GetCACaps');
ok t_cmp(scalar(grep { $_ eq 'Renewal' } caps_list($caps)), 1,
         'GetCACaps advertises Renewal');

# 7. an expired certificate of ours does not renew: make one with the CA
#    key directly, already expired
my $dir = $c->dir;
my $exp_key = "$dir/expired.key";
my $r = run_cmd('openssl', 'req', '-new', '-newkey', 'rsa:2048', '-nodes',
                '-keyout', $exp_key, '-subj', '/CN=expired.example.org',
                '-out', "$dir/expired.csr");
# notAfter a day before notBefore: expired whenever it is checked
$r = run_cmd('openssl', 'x509', '-req', '-in', "$dir/expired.csr",
             '-CA', $ca, '-CAkey', pki_file('ca.key'), '-set_serial', '4242',
             '-days', '-1', '-out', "$dir/expired.pem") if $r->{rc} == 0;
t_debug("expired cert: rc=$r->{rc} $r->{err}");
my $expired = $c->request(type => 17, signer => "$dir/expired.pem",
                          signer_key => $exp_key,
                          subject => '/CN=expired.example.org');
$rep = $c->reply($c->post('/scep', $expired), $expired);
t_debug(ScepClient::describe($rep));
ok t_cmp($rep->{pkiStatus}, 'FAILURE', 'expired signer refused');
ok t_cmp($rep->{failInfoText} // '', qr/not valid now/,
         'failInfoText says why');

ok t_cmp(error_log_clean(), '', 'no crashed children');
