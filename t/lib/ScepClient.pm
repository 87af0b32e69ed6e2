package ScepClient;

# The project's own SCEP client (tools/scep-test-client) driven from the
# Apache::Test suite: make a pkiMessage, send it by POST or by GET in the
# encodings real clients use, and take the CertRep apart.
#
#   my $c   = ScepClient->new;
#   my $req = $c->request(cipher => 'aes256', subject => '/CN=x');
#   my $res = $c->post('/scep', $req);              # HTTP::Response
#   my $rep = $c->reply($res, $req);                 # hash of key=value
#   ok $rep->{pkiStatus} eq 'SUCCESS';
#   my $e = $c->enrol('/scep', subject => '/CN=x');  # the three at once
#
# The C tool does no HTTP; this module does, through Apache::TestRequest,
# and builds GET URLs itself so that nothing re-encodes the message.

use strict;
use warnings FATAL => 'all';

use Apache::Test ();
use Apache::TestRequest ();
use File::Spec::Functions qw(catfile);
use HTTP::Request ();
use MIME::Base64 ();
use ScepTest qw(top_dir pki_file scratch_dir run_cmd slurp spit);

use Exporter 'import';
our @EXPORT_OK = qw(client_path have_client encode_message
                    error_log_clean);

# ---------------------------------------------------------------- the tool

sub client_path {
    return $ENV{SCEP_TEST_CLIENT}
        || catfile(top_dir(), 'tools', 'scep-test-client');
}

# for plan(): need('scep', have_client())
sub have_client {
    my $path = client_path();
    return { "$path is built (make tools/scep-test-client)" => -x $path };
}

# ---------------------------------------------------------------- objects

# ScepClient->new(dir => DIR, ra => FILE)
#   dir: where keys, requests and replies go (default: a scratch dir)
#   ra:  the certificate requests are encrypted to and replies are
#        expected to be signed by (default t/pki/ra.pem)
sub new {
    my($class, %args) = @_;
    my $self = {
        dir => $args{dir} || scratch_dir(),
        ra  => $args{ra} || pki_file('ra.pem'),
        n   => 0,
    };
    return bless $self, $class;
}

sub dir { $_[0]->{dir} }
sub ra  { $_[0]->{ra} }

# $c->request(%opts): build a pkiMessage. Options map to the tool's:
#   key signer signer_key signer_cn subject san challenge csr type cipher
#   digest transaction_id content_raw issuer_and_serial issuer_and_subject
#   ra (a file or an array ref of files; default $c->ra)
#   and the flags bad_signature bad_csr_signature no_transaction_id
#   no_content.
# Without key a fresh key file is made (RSA 2048) for this request.
# Returns a hash ref: der, file, key, signer (the signer certificate file:
# the self-signed one the tool made, or the one given), signer_key,
# transactionID, senderNonce, subject, rc, err, cmd. Dies when the tool
# fails: a test cannot go on without its request.
sub request {
    my($self, %o) = @_;
    my $n = ++$self->{n};
    my $dir = $self->{dir};

    my $key = $o{key} // "$dir/key-$n.pem";
    my $out = "$dir/req-$n.der";
    my @args = ('request', '--key', $key, '--out', $out);

    my $ra = $o{ra} // $self->{ra};
    push @args, map { ('--ra', $_) } ref $ra ? @$ra : ($ra);

    my $signer = $o{signer};
    if (defined $signer) {
        push @args, '--signer', $signer;
    }
    else {
        $signer = "$dir/signer-$n.pem";
        push @args, '--signer-out', $signer;
    }

    my %opt = (
        signer_key => '--signer-key', signer_cn => '--signer-cn',
        subject => '--subject', san => '--san', challenge => '--challenge',
        csr => '--csr', type => '--type', cipher => '--cipher',
        digest => '--digest', transaction_id => '--transaction-id',
        content_raw => '--content-raw',
        issuer_and_serial => '--issuer-and-serial',
        issuer_and_subject => '--issuer-and-subject',
    );
    for my $k (sort keys %opt) {
        push @args, $opt{$k}, $o{$k} if defined $o{$k};
    }
    my %flag = (
        bad_signature => '--bad-signature',
        bad_csr_signature => '--bad-csr-signature',
        no_transaction_id => '--no-transaction-id',
        no_content => '--no-content',
    );
    for my $k (sort keys %flag) {
        push @args, $flag{$k} if $o{$k};
    }

    my $r = run_cmd(client_path(), @args);
    die "scep-test-client request failed ($r->{rc}): $r->{err}\n$r->{cmd}\n"
        if $r->{rc} != 0;

    my %kv = parse_kv($r->{out});
    return {
        %kv,
        der        => slurp($out),
        file       => $out,
        key        => $key,
        signer     => $signer,
        signer_key => $o{signer_key} // $key,
        subject    => $o{subject},
        cmd        => $r->{cmd},
    };
}

sub parse_kv {
    my $text = shift // '';
    my %kv;
    for my $line (split /\n/, $text) {
        $kv{$1} = $2 if $line =~ /^([A-Za-z]+)=(.*)$/;
    }
    return %kv;
}

# ---------------------------------------------------------------- HTTP

# $c->post(PATH, REQ|DER, %args): POST the message to
# PATH?operation=PKIOperation with Content-Type application/x-pki-message.
# args: content_type => undef sends no Content-Type at all (as sscep);
#       query => '...' replaces the query string ('' for none);
#       any Apache::TestRequest argument (username, password,
#       redirect_ok, ...).
sub post {
    my($self, $path, $msg, %args) = @_;
    my $der = ref $msg ? $msg->{der} : $msg;
    my $query = exists $args{query} ? delete $args{query}
                                    : 'operation=PKIOperation';
    my $url = length $query ? "$path?$query" : $path;

    if (exists $args{content_type} && !defined $args{content_type}) {
        delete $args{content_type};
        return $self->raw_post($url, $der, %args);
    }
    my $ct = delete $args{content_type} // 'application/x-pki-message';
    return Apache::TestRequest::POST($url, content => $der,
                                     'Content-Type' => $ct, %args);
}

# A POST without a Content-Type header (HTTP::Request::Common would add
# application/x-www-form-urlencoded).
sub raw_post {
    my($self, $url, $der, %args) = @_;
    my $ua = Apache::TestRequest::user_agent();
    my $req = HTTP::Request->new(
        POST => Apache::TestRequest::resolve_url($url));
    $req->content($der);
    $req->header('Content-Length' => length $der);
    $req->remove_header('Content-Type');
    local $Apache::TestRequest::RedirectOK = $args{redirect_ok}
        if exists $args{redirect_ok};
    return $ua->request($req);
}

# encode_message(DER, STYLE): the message= value of a GET.
#   rfc    base64, every character outside [A-Za-z0-9-._~] percent-escaped
#          (RFC 8894 4.1: '+' %2B, '/' %2F, '=' %3D)
#   sscep  base64 with a newline every 64 characters and at the end, sent
#          as %0A; '+' %2B, '=' %3D, '/' raw (sscep src/net.c)
#   macos  only '=' escaped; '+' and '/' raw (smallstep PR #1570)
#   nopad  rfc without the '=' padding
#   raw    plain base64, nothing escaped
sub encode_message {
    my($der, $style) = @_;
    my $b64 = MIME::Base64::encode_base64($der, '');

    if ($style eq 'rfc') {
        $b64 =~ s/([^A-Za-z0-9\-._~])/sprintf('%%%02X', ord $1)/ge;
    }
    elsif ($style eq 'sscep') {
        my $lines = join '', map { "$_\n" } ($b64 =~ /(.{1,64})/gs);
        $lines =~ s/\+/%2B/g;
        $lines =~ s/=/%3D/g;
        $lines =~ s/-/%2D/g;
        $lines =~ s/\n/%0A/g;
        $b64 = $lines;
    }
    elsif ($style eq 'macos') {
        $b64 =~ s/=/%3D/g;
    }
    elsif ($style eq 'nopad') {
        $b64 =~ s/=+$//;
        $b64 =~ s/([^A-Za-z0-9\-._~])/sprintf('%%%02X', ord $1)/ge;
    }
    elsif ($style ne 'raw') {
        die "unknown encoding '$style'";
    }
    return $b64;
}

# $c->get(PATH, REQ|DER, STYLE, %args): GET PATH?operation=PKIOperation&
# message=<encoded>, the URL built here byte for byte.
#   args: first => 'message' puts message= before operation=.
sub get {
    my($self, $path, $msg, $style, %args) = @_;
    my $der = ref $msg ? $msg->{der} : $msg;
    my $m = 'message=' . encode_message($der, $style);
    my $o = 'operation=PKIOperation';
    my $first = delete $args{first} // 'operation';
    my $q = $first eq 'message' ? "$m&$o" : "$o&$m";
    return Apache::TestRequest::GET("$path?$q", %args);
}

# ---------------------------------------------------------------- replies

# $c->reply(RESPONSE|DER, REQ, %args): run "scep-test-client reply" on a
# CertRep. With REQ the envelope is opened with its key and signer, the
# recipientNonce is compared with its senderNonce (nonceOk) and the
# certificates of a SUCCESS land in a PEM file (cert_file).
#   args: ra => FILE (default $c->ra)
# Returns a hash ref of the tool's key=value lines plus rc, err, file,
# cert_file (when certificates came back).
sub reply {
    my($self, $res, $req, %args) = @_;
    my $der = ref $res ? $res->content : $res;
    my $n = ++$self->{n};
    my $dir = $self->{dir};
    my $in = spit("$dir/rep-$n.der", $der // '');
    my $certs = "$dir/issued-$n.pem";

    my @args = ('reply', '--in', $in, '--ra', $args{ra} // $self->{ra});
    if ($req) {
        push @args, '--key', $req->{signer_key}, '--signer', $req->{signer},
            '--csr-key', $req->{key}, '--cert-out', $certs;
    }
    my $r = run_cmd(client_path(), @args);
    my %kv = parse_kv($r->{out});
    $kv{rc} = $r->{rc};
    $kv{err} = $r->{err};
    $kv{file} = $in;
    $kv{cert_file} = $certs if -s $certs;
    if ($req) {
        $kv{nonceOk} = ($kv{recipientNonce} // '') ne ''
            && lc($kv{recipientNonce}) eq lc($req->{senderNonce} // '')
            ? 1 : 0;
    }
    return \%kv;
}

# One PKCSReq by POST to URL (a path on the test server, or a whole URL):
# { code, rep, req, res }; rep->{cert_file} is the issued certificate when
# it succeeded. Options as request().
sub enrol {
    my($self, $url, %o) = @_;
    my $req = $self->request(%o);
    my $res = $self->post($url, $req);
    my $rep = $self->reply($res, $req);
    return { code => $res->code, rep => $rep, req => $req, res => $res };
}

# A summary of a reply for t_debug
sub describe {
    my $rep = shift;
    return join ' ', map { "$_=" . ($rep->{$_} // '') }
        qw(rc pkiStatus failInfo failInfoText signatureOk signerIsRA
           attributeTypesOk cipher certs certSubject certSAN),
        ($rep->{err} ? ('err=' . ($rep->{err} =~ s/\s+/ /gr)) : ());
}

# ---------------------------------------------------------------- checks

# openssl verify of the first certificate of a reply against a CA file;
# 1 when it verifies
sub verifies {
    my($cert_file, $ca_file) = @_;
    return 0 unless $cert_file && -s $cert_file;
    my $r = run_cmd('openssl', 'verify', '-CAfile', $ca_file, $cert_file);
    return $r->{rc} == 0 && $r->{out} =~ /: OK\s*$/ ? 1 : 0;
}

# The lines of t/logs/error_log that tell of a crashed child ("" when
# none): segfaults, "exit signal", sanitizer reports
sub error_log_clean {
    my $log = catfile(Apache::Test::vars('t_logs'), 'error_log');
    my $text = slurp($log) // '';
    my @bad = grep { /Segmentation fault|exit signal|AddressSanitizer|
                      runtime error:|AH0005[12]/x } split /\n/, $text;
    return join "\n", @bad;
}

1;
