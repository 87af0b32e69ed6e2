# PKIOperation PKCSReq by POST (RFC 8894 4.3), in every content cipher and
# digest real clients use. The CertRep must be a SUCCESS signed by the RA
# the client encrypted to, with PrintableString / OCTET STRING attributes
# (what Apple and sscep check), the request's transactionID and our
# senderNonce as recipientNonce, encrypted with the request's cipher (AES
# for single DES, which is never used to answer) to the self-signed signer,
# holding a certificate for our key and subject that chains to the CA.

use strict;
use warnings FATAL => 'all';

use Apache::Test;
use Apache::TestRequest;
use Apache::TestUtil;
use ScepTest qw(pki_file cert_subject);
use ScepClient qw(have_client error_log_clean);

# cipher, digest, the cipher the reply must use, extra POST arguments
my @cases = (
    [ 'aes128', 'sha256', 'AES-128-CBC' ],
    [ 'aes192', 'sha256', 'AES-192-CBC' ],
    [ 'aes256', 'sha256', 'AES-256-CBC' ],
    [ 'des3',   'sha256', 'DES-EDE3-CBC' ],
    [ 'des',    'sha256', 'AES-128-CBC' ],
    [ 'aes128', 'sha1',   'AES-128-CBC' ],
    [ 'aes256', 'sha512', 'AES-256-CBC' ],
    # sscep: no Content-Type, no operation= on the POST
    [ 'aes128', 'sha256', 'AES-128-CBC',
      content_type => undef, query => '' ],
);
my $per_case = 16;

plan tests => $per_case * @cases + 2,
    need('scep', 'ca_simple', have_client());

my $c = ScepClient->new;
my $ca = pki_file('ca.pem');
my $n = 0;

for my $case (@cases) {
    my($cipher, $digest, $want, %post) = @$case;
    $n++;
    my $label = "POST $cipher/$digest" . (%post ? ' (sscep style)' : '');
    my $subject = "/CN=post-$n.example.org/O=mod_scep tests";

    my $req = $c->request(cipher => $cipher, digest => $digest,
                          subject => $subject, challenge => 'unused');
    my $res = $c->post('/scep', $req, %post);
    t_debug("$label -> " . $res->status_line);

    ok t_cmp($res->code, 200, "$label: HTTP status");
    ok t_cmp(scalar $res->header('Content-Type'),
             'application/x-pki-message', "$label: Content-Type");

    my $rep = $c->reply($res, $req);
    t_debug(ScepClient::describe($rep));
    ok t_cmp($rep->{rc}, 0, "$label: the CertRep parses and opens");
    ok t_cmp($rep->{messageType}, 3, "$label: messageType CertRep");
    ok t_cmp($rep->{pkiStatus}, 'SUCCESS', "$label: pkiStatus");
    ok t_cmp($rep->{attributeTypesOk}, 1,
             "$label: PrintableString / OCTET STRING attributes");
    ok t_cmp($rep->{signatureOk}, 1, "$label: signature verifies");
    ok t_cmp($rep->{signerIsRA}, 1, "$label: signed by the RA certificate");
    ok t_cmp($rep->{nonceOk}, 1,
             "$label: recipientNonce is our senderNonce");
    ok t_cmp($rep->{transactionID}, $req->{transactionID},
             "$label: transactionID echoed");
    ok t_cmp(length($rep->{senderNonce} // ''), 32,
             "$label: a 16-byte senderNonce of its own");
    ok t_cmp($rep->{cipher}, $want, "$label: reply cipher");
    ok t_cmp($rep->{certs} >= 1 ? 1 : 0, 1, "$label: certificates inside");
    ok t_cmp(ScepClient::verifies($rep->{cert_file}, $ca), 1,
             "$label: the certificate verifies against the CA");
    ok t_cmp($rep->{certSubject} // '', $subject, "$label: subject");
    ok t_cmp($rep->{certKeyMatch} // 0, 1, "$label: our public key");
}

# still alive
my $res = GET '/scep?operation=GetCACaps';
ok t_cmp($res->code, 200, 'GetCACaps still answers');
ok t_cmp(error_log_clean(), '', 'no crashed child in error_log');
