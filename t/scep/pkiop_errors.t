# What mod_scep does with PKIOperations it cannot honour (DESIGN.md,
# "Behaviour every part keeps"): a request that parses as a pkiMessage
# always gets a signed CertRep FAILURE with the right failInfo; HTTP errors
# only for what cannot be parsed (400), is too large (413) or cannot be
# answered (no transactionID: 400). GetCRL is redirected to ScepCRLURL or
# refused with 400. Never a 5xx for client input, never a crashed child.

use strict;
use warnings FATAL => 'all';

use Apache::Test;
use Apache::TestRequest;
use Apache::TestUtil;
use ScepTest qw(pki_file spit);
use ScepClient qw(have_client encode_message error_log_clean);

plan tests => 9 * 7 + 4 + 6 + 1 + 4 + 3 + 2,
    need('scep', 'ca_simple', have_client());

my $c = ScepClient->new;

# 9 tests: a signed FAILURE with this failInfo (string or regex), no
# envelope, our nonce and transactionID
sub refused_ok {
    my($label, $res, $req, $fail) = @_;
    t_debug("$label -> " . $res->status_line);
    ok t_cmp($res->code, 200, "$label: HTTP status (not an HTTP error)");
    ok t_cmp(scalar $res->header('Content-Type'),
             'application/x-pki-message', "$label: Content-Type");
    my $rep = $c->reply($res, $req);
    t_debug(ScepClient::describe($rep));
    ok t_cmp($rep->{rc}, 0, "$label: the CertRep parses");
    ok t_cmp($rep->{pkiStatus}, 'FAILURE', "$label: pkiStatus");
    ok t_cmp($rep->{failInfo}, $fail, "$label: failInfo");
    ok t_cmp($rep->{signatureOk} && $rep->{signerIsRA} ? 1 : 0, 1,
             "$label: signed by the RA");
    ok t_cmp($rep->{attributeTypesOk}, 1, "$label: attribute types");
    ok t_cmp($rep->{nonceOk}, 1, "$label: recipientNonce is our nonce");
    ok t_cmp($rep->{transactionID}, $req->{transactionID},
             "$label: transactionID echoed");
}

sub status_ok {
    my($label, $res, $want) = @_;
    t_debug("$label -> " . $res->status_line);
    ok t_cmp($res->code, $want, "$label: HTTP status");
}

# ---- parsed, so answered with a FAILURE

# the outer signature does not verify
{
    my $req = $c->request(bad_signature => 1);
    refused_ok('bad outer signature', $c->post('/scep', $req), $req,
               'badMessageCheck');
}

# the CSR's own signature (the proof of possession) does not verify
{
    my $req = $c->request(bad_csr_signature => 1);
    refused_ok('bad CSR signature', $c->post('/scep', $req), $req,
               'badMessageCheck');
}

# messageType 99 is no SCEP message
{
    my $req = $c->request(type => 99);
    refused_ok('messageType 99', $c->post('/scep', $req), $req,
               'badRequest');
}

# a PKCSReq without a pkcsPKIEnvelope
{
    my $req = $c->request(no_content => 1);
    refused_ok('PKCSReq without content', $c->post('/scep', $req), $req,
               'badRequest');
}

# encrypted to a certificate the server holds no key for
{
    my $req = $c->request(ra => pki_file('nextra.pem'));
    refused_ok('encrypted to another RA', $c->post('/scep', $req), $req,
               qr/^(?:badMessageCheck|badRequest)$/);
}

# the envelope holds something that is not a CSR
{
    my $blob = spit($c->dir . '/blob.bin', 'not a CSR ' x 30);
    my $req = $c->request(content_raw => $blob);
    refused_ok('content not a CSR', $c->post('/scep', $req), $req,
               'badRequest');
}

# no signing backend: a FAILURE, not a 500
{
    my $req = $c->request(subject => '/CN=nosign.example.org');
    refused_ok('/scep-nosign', $c->post('/scep-nosign', $req), $req,
               'badRequest');
}

# ---- not a pkiMessage: 400

{
    my $req = $c->request;
    my $der = $req->{der};
    status_ok('garbage body',
              $c->post('/scep', "this is not a pkiMessage\n" x 20), 400);
    status_ok('truncated DER',
              $c->post('/scep', substr($der, 0, length($der) - 100)), 400);
    status_ok('empty body', $c->post('/scep', ''), 400);
    status_ok('DER with trailing bytes', $c->post('/scep', "$der\0\0"), 400);
}

# ---- GET without a usable message: 400

{
    status_ok('GET PKIOperation without message',
              GET('/scep?operation=PKIOperation'), 400);
    status_ok('GET PKIOperation with an empty message',
              GET('/scep?operation=PKIOperation&message='), 400);
    status_ok('GET PKIOperation, message not base64',
              GET('/scep?operation=PKIOperation&message=%21%21%21%21'), 400);
    status_ok('GET PKIOperation, base64 of garbage',
              GET('/scep?operation=PKIOperation&message='
                  . encode_message('garbage' x 10, 'rfc')), 400);
    my $req = $c->request;
    status_ok('GET PKIOperation, truncated message',
              GET('/scep?operation=PKIOperation&message='
                  . encode_message(substr($req->{der}, 0, 500), 'rfc')),
              400);
    status_ok('unknown operation', GET('/scep?operation=Frobnicate'), 400);
}

# ---- no transactionID: no CertRep can be matched to it

{
    my $req = $c->request(no_transaction_id => 1);
    status_ok('missing transactionID', $c->post('/scep', $req), 400);
}

# ---- ScepSize 4096 on /scep-small

{
    status_ok('5000 bytes on /scep-small',
              $c->post('/scep-small', 'x' x 5000), 413);

    my $blob = spit($c->dir . '/big.bin', 'A' x 3000);
    my $big = $c->request(content_raw => $blob);
    t_debug('big request: ' . length($big->{der}) . ' bytes');
    status_ok('a ' . length($big->{der}) . '-byte pkiMessage on /scep-small',
              $c->post('/scep-small', $big), 413);
    status_ok('the same by GET (macOS encoding)',
              $c->get('/scep-small', $big, 'macos'), 413);

    my $small = $c->request(subject => '/CN=small.example.org');
    my $res = $c->post('/scep-small', $small);
    status_ok('a ' . length($small->{der}) . '-byte PKCSReq on /scep-small',
              $res, 200);
}

# ---- GetCRL (messageType 22)

{
    my $req = $c->request(type => 22,
                          issuer_and_serial => pki_file('ca.pem') . ':01');
    my $res = $c->post('/scep-crl', $req, redirect_ok => 0);
    t_debug('GetCRL on /scep-crl -> ' . $res->status_line);
    ok t_cmp($res->code, qr/^30[12]$/, 'GetCRL on /scep-crl: a redirect');
    ok t_cmp(scalar $res->header('Location') // '',
             'http://crl.example.org/ca.crl',
             'GetCRL on /scep-crl: to ScepCRLURL');

    $req = $c->request(type => 22,
                       issuer_and_serial => pki_file('ca.pem') . ':01');
    status_ok('GetCRL on /scep (no ScepCRLURL)',
              $c->post('/scep', $req, redirect_ok => 0), 400);
}

# ---- the server survived all of it

{
    my $res = GET '/scep?operation=GetCACaps';
    ok t_cmp($res->code, 200, 'GetCACaps still answers');
    ok t_cmp(error_log_clean(), '', 'no crashed child in error_log');
}
