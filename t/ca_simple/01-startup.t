# mod_ca_simple's start-up checks, with httpd -t on configurations made
# here: every mistake the checks know stops httpd with a line that names
# the directive, the file and what is wrong; configurations that are right
# (a signer inherited from the server, a chain that goes up, a default
# extension line that cannot be built, warned) pass. Lines written by the
# code mod_ca_simple shares with mod_ca_engine (ca_sign.c) are logged as
# mod_ca_simple's. Then one enrollment through a section whose
# CASimpleExtension lines replace the defaults shows that the certificate
# carries exactly those extensions.

use strict;
use warnings FATAL => 'all';

use Apache::Test;
use Apache::TestUtil;
use ScepTest qw(scratch_dir pki_file run_cmd spit);
use ScepTest::Httpd ();
use ScepClient ();

my $dir = scratch_dir();

# a CA certificate without a subjectKeyIdentifier: authorityKeyIdentifier
# keyid:always cannot be built with it
my $noski_key = "$dir/noski.key";
my $noski = "$dir/noski.pem";
my $r = run_cmd('openssl', 'req', '-x509', '-newkey', 'rsa:2048', '-nodes',
                '-keyout', $noski_key, '-out', $noski, '-days', '30',
                '-subj', '/CN=CA without SKI',
                '-addext', 'basicConstraints=critical,CA:TRUE',
                '-addext', 'keyUsage=critical,keyCertSign,cRLSign',
                '-addext', 'subjectKeyIdentifier=none',
                '-addext', 'authorityKeyIdentifier=none');
die "openssl req: $r->{err}" if $r->{rc} != 0;
chmod 0644, $noski_key, $noski;

sub signer {
    my %a = (cert => pki_file('ca.pem'), key => pki_file('ca.key'), @_);
    my @l;
    push @l, qq(CASimpleCertificate "$a{cert}") if $a{cert};
    push @l, qq(CASimpleKey "$a{key}") if $a{key};
    push @l, @{ $a{extra} // [] };
    return join "\n", map({ "    $_" } @l), '';
}

sub loc {
    my($path, $body) = @_;
    my $ra = pki_file('ra.pem');
    my $rakey = pki_file('ra.key');
    return <<EOF;
<Location $path>
    SetHandler scep
    ScepRACertificate "$ra"
    ScepRAKey "$rakey"
    ScepSubjectRequest *
    CASimpleTime on
    CASimpleSerialRandom on
$body</Location>
EOF
}

my $ca = pki_file('ca.pem');
my $ra = pki_file('ra.pem');

# [ label, configuration, undef (must pass) or a regex of the error,
#   a regex the output must have even so ]
my @cases = (
    [ 'complete', loc('/a', signer()), undef ],
    [ 'signer inherited from the server',
      signer() . loc('/a', '') . loc('/b', "    CASimpleDays 10\n"), undef ],
    [ 'intermediate with its chain',
      loc('/a', signer(cert => pki_file('inter.pem'),
                       key => pki_file('inter.key'),
                       extra => ['CASimpleChain "' . pki_file('chain.pem')
                                 . '"'])), undef ],
    [ 'default extensions that need a subjectKeyIdentifier (warned)',
      loc('/a', signer(cert => $noski, key => $noski_key)), undef,
      qr/\[ca_simple:warn\].*CA02003: the default extension authorityKeyIdentifier keyid:always cannot be built with CASimpleCertificate \Q$noski\E .*signing will fail where no CASimpleExtension applies/ ],

    [ 'own extension that needs a subjectKeyIdentifier',
      loc('/a', signer(cert => $noski, key => $noski_key,
                       extra => ['CASimpleExtension authorityKeyIdentifier keyid:always'])),
      qr/CA02002: CASimpleExtension authorityKeyIdentifier keyid:always cannot be built with CASimpleCertificate \Q$noski\E \(\S+:\d+\)/ ],
    [ 'chain that does not issue the CA',
      loc('/a', signer(extra => ["CASimpleChain \"$ra\""])),
      qr/\[ca_simple:error\].*CA02004: CASimpleChain \Q$ra\E \(\S+:\d+\): certificate 1 \(.*\) did not issue .*; the chain must start with the issuer of CASimpleCertificate \Q$ca\E and go up/ ],
    [ 'next certificate that is no CA',
      loc('/a', signer(extra => ["CASimpleNextCertificate \"$ra\""])),
      qr/CA02005: CASimpleNextCertificate \Q$ra\E \(\S+:\d+\) is not a CA certificate/ ],
    [ 'key without certificate', loc('/a', signer(cert => undef)),
      qr/CA02007: CASimpleKey \S+ \(\S+:\d+\) is set but CASimpleCertificate is missing from the same section/ ],
    [ 'certificate without key', loc('/a', signer(key => undef)),
      qr/CA02008: CASimpleCertificate \Q$ca\E \(\S+:\d+\) is set but CASimpleKey is missing/ ],
    [ 'key of another certificate',
      loc('/a', signer(key => pki_file('ra.key'))),
      qr/CA02009: CASimpleKey \S+ra.key does not match CASimpleCertificate \Q$ca\E/ ],
    [ 'certificate that is no CA',
      loc('/a', signer(cert => $ra, key => pki_file('ra.key'))),
      qr/CA02010: CASimpleCertificate \Q$ra\E \(\S+:\d+\) is not a CA certificate/ ],
    [ 'missing certificate file',
      loc('/a', signer(cert => "$dir/none.pem")),
      qr/CASimpleCertificate \Q$dir\E\/none.pem: cannot load the certificate/ ],
    [ 'chain that is not certificates',
      loc('/a', signer(extra => ['CASimpleChain "' . pki_file('ca.key') . '"'])),
      qr/CASimpleChain \S+ca.key: cannot load the certificates/ ],
    [ 'days 0', loc('/a', signer(extra => ['CASimpleDays 0'])),
      qr/CASimpleDays must be a number of days from 1 to 36500, not '0'/ ],
    [ 'days too many', loc('/a', signer(extra => ['CASimpleDays 36501'])),
      qr/CASimpleDays must be a number of days from 1 to 36500, not '36501'/ ],
    [ 'days not a number', loc('/a', signer(extra => ['CASimpleDays 10x'])),
      qr/CASimpleDays must be a number of days from 1 to 36500, not '10x'/ ],
    [ 'bad extension',
      loc('/a', signer(extra => ['CASimpleExtension keyUsage nonsense'])),
      qr/CASimpleExtension keyUsage nonsense: not a valid extension/ ],
    [ 'same extension twice',
      loc('/a', signer(extra => ['CASimpleExtension keyUsage digitalSignature',
                                 'CASimpleExtension 2.5.29.15 keyEncipherment'])),
      qr/CASimpleExtension 2.5.29.15: already set in this section as keyUsage/ ],
    [ 'subjectAltName extension',
      loc('/a', signer(extra => ['CASimpleExtension subjectAltName DNS:x'])),
      qr/CASimpleExtension subjectAltName: the subjectAltName is taken from the request/ ],
);

plan tests => 2 * @cases + 3 + 4,
    need need_module('scep', 'ca_simple'), ScepClient::have_client(),
         { 'no modules directory' => sub { ScepTest::modules_dir() } };

for my $case (@cases) {
    my($label, $body, $want, $also) = @$case;
    my $h = ScepTest::Httpd->new(body => $body);
    my $t = $h->configtest;
    t_debug("$label: exit $t->{rc}: $t->{err}");
    if (!defined $want) {
        ok t_cmp($t->{rc}, 0, "$label: httpd -t passes");
        ok t_cmp($t->{err}, $also // qr/Syntax OK/, "$label: says so");
    }
    else {
        ok t_cmp($t->{rc} != 0 ? 1 : 0, 1, "$label: httpd -t fails");
        ok t_cmp($t->{err}, $want, "$label: says why");
    }
}

# httpd -k start refuses as httpd -t does
{
    my $h = ScepTest::Httpd->new(
        body => loc('/a', signer(extra => ["CASimpleChain \"$ra\""])));
    my $ok = $h->start;
    my $text = $h->{last}->{err} . $h->{last}->{out} . $h->error_log;
    ok t_cmp($ok, 0, 'start with a broken chain: httpd does not start');
    ok t_cmp($h->{last}->{rc} != 0 ? 1 : 0, 1, 'start: non-zero exit');
    ok t_cmp($text, qr/CA02004: CASimpleChain/, 'start: says why');
    $h->stop if $ok;
}

# the extension lines of a section replace the defaults, and are what the
# certificate carries
{
    my $h = ScepTest::Httpd->new(
        body => loc('/ext', signer(extra => [
            'CASimpleExtension basicConstraints critical,CA:FALSE',
            'CASimpleExtension keyUsage critical,digitalSignature',
            'CASimpleExtension extendedKeyUsage serverAuth'])));
    my $up = $h->start;
    ok t_cmp($up, 1, 'server with CASimpleExtension lines starts');
    my $client = ScepClient->new(dir => $dir);
    my $res = $up ? $client->enrol($h->url('/ext'), subject => '/CN=ext-test')
                  : undef;
    ok t_cmp($res && $res->{rep}->{pkiStatus}, 'SUCCESS',
             'enrollment under own extension lines succeeds');
    my $text = '';
    if ($res && $res->{rep}->{cert_file}) {
        my $x = run_cmd('openssl', 'x509', '-in', $res->{rep}->{cert_file},
                        '-noout', '-text');
        $text = $x->{out};
    }
    t_debug($text);
    ok t_cmp($text, qr/Key Usage: critical\s+Digital Signature\s+X509v3 Extended Key Usage:\s+TLS Web Server Authentication/s,
             'the certificate has the configured keyUsage and extendedKeyUsage');
    ok t_cmp($text =~ /X509v3 extensions:/ && $text !~ /Subject Key Identifier/
             ? 1 : 0, 1, 'and not the default subjectKeyIdentifier');
    $h->stop;
}
