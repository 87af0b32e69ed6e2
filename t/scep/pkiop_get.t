# PKIOperation by GET (RFC 8894 4.1 and what clients really send, protocol
# brief 1.14): the message= value is standard base64 in several escapings,
# all of which must decode to the same pkiMessage and enrol:
#   rfc    every reserved character percent-escaped
#   sscep  a newline every 64 characters sent as %0A, '+' %2B, '=' %3D,
#          '/' raw
#   macos  only '=' escaped, '+' and '/' raw (a '+' must not become a
#          space)
#   nopad  the '=' padding left out
# plus the parameters in the other order. base64url is not base64: 400.

use strict;
use warnings FATAL => 'all';

use Apache::Test;
use Apache::TestRequest;
use Apache::TestUtil;
use ScepTest qw(pki_file);
use ScepClient qw(have_client encode_message error_log_clean);

my @styles = qw(rfc sscep macos nopad);
my $per_case = 11;

plan tests => 3 + $per_case * (@styles + 1) + 2 + 2,
    need('scep', 'ca_simple', have_client());

my $c = ScepClient->new;
my $ca = pki_file('ca.pem');

# A request whose base64 has '+', '/' and '=' padding in it, so that every
# escaping rule is exercised; the CN's length moves the padding.
sub good_request {
    my($tag) = @_;
    my $key = $c->dir . "/get-$tag.key";
    for my $i (1 .. 60) {
        my $req = $c->request(key => $key,
                              subject => "/CN=get-$tag-" . ('x' x $i));
        my $b64 = encode_message($req->{der}, 'raw');
        return $req if $b64 =~ m{\+} && $b64 =~ m{/} && $b64 =~ /=$/;
    }
    die "no request with '+', '/' and '=' in its base64 after 60 tries";
}

{
    my $req = good_request('check');
    my $sscep = encode_message($req->{der}, 'sscep');
    my $macos = encode_message($req->{der}, 'macos');
    ok t_cmp($sscep, qr/%0A/, 'sscep style carries %0A line breaks');
    ok t_cmp($macos, qr{\+.*/|/.*\+}, "macOS style has raw '+' and '/'");
    ok t_cmp($macos =~ /=/ ? 'raw =' : 'escaped =', 'escaped =',
             "macOS style escapes '='");
}

sub check_get {
    my($label, $res, $req) = @_;
    t_debug("$label -> " . $res->status_line);
    ok t_cmp($res->code, 200, "$label: HTTP status");
    ok t_cmp(scalar $res->header('Content-Type'),
             'application/x-pki-message', "$label: Content-Type");
    my $rep = $c->reply($res, $req);
    t_debug(ScepClient::describe($rep));
    ok t_cmp($rep->{rc}, 0, "$label: the CertRep parses and opens");
    ok t_cmp($rep->{pkiStatus}, 'SUCCESS', "$label: pkiStatus");
    ok t_cmp($rep->{attributeTypesOk}, 1, "$label: attribute types");
    ok t_cmp($rep->{signatureOk}, 1, "$label: signature verifies");
    ok t_cmp($rep->{signerIsRA}, 1, "$label: signed by the RA");
    ok t_cmp($rep->{nonceOk}, 1, "$label: recipientNonce is our nonce");
    ok t_cmp($rep->{transactionID}, $req->{transactionID},
             "$label: transactionID echoed");
    ok t_cmp(ScepClient::verifies($rep->{cert_file}, $ca), 1,
             "$label: the certificate verifies against the CA");
    ok t_cmp($rep->{certSubject} // '', $req->{subject}, "$label: subject");
}

for my $style (@styles) {
    my $req = good_request($style);
    check_get("GET $style", $c->get('/scep', $req, $style), $req);
}

{
    my $req = good_request('order');
    check_get('GET message= before operation=',
              $c->get('/scep', $req, 'rfc', first => 'message'), $req);
}

# base64url (micromdm scepclient before #250) is not what RFC 8894 says
{
    my $req = good_request('url');
    my $b64 = encode_message($req->{der}, 'raw');
    (my $url = $b64) =~ tr{+/}{-_};
    $url =~ s/=+$//;
    my $res = GET "/scep?operation=PKIOperation&message=$url";
    t_debug('GET base64url -> ' . $res->status_line);
    ok t_cmp($res->code, 400, 'GET with base64url: 400');

    # '+' escaped and '/' raw, without line breaks: still base64
    (my $spaced = encode_message($req->{der}, 'macos')) =~ s/\+/%2B/g;
    $res = GET "/scep?operation=PKIOperation&message=$spaced";
    t_debug('GET %2B, raw / -> ' . $res->status_line);
    ok t_cmp($res->code, 200, "GET with '+' escaped and '/' raw: 200");
}

# still alive
my $res = GET '/scep?operation=GetCACaps';
ok t_cmp($res->code, 200, 'GetCACaps still answers');
ok t_cmp(error_log_clean(), '', 'no crashed child in error_log');
