# Start-up checks, with httpd -t and httpd -k start on configurations made
# here: a wrong PIN, a missing key and a missing engine each stop httpd
# with a line that says which it was; so do the other mistakes the checks
# know (incomplete signer, mismatched certificate, conflicting engine
# setups, ...). Configurations that are right, including a signer
# inherited from the server, start. The PIN is never in the output.

use strict;
use warnings FATAL => 'all';

use Apache::Test;
use Apache::TestUtil;
use ScepTest qw(scratch_dir spit);
use EngineTest;

my $dir = scratch_dir();
my $wrong = spit("$dir/wrong.pin", EngineTest::WRONG_PIN . "\n");
chmod 0600, $wrong;
my $tf = \&EngineTest::token_file;
my $pin = EngineTest::pin() // 'unknown-pin';

sub loc { EngineTest::scep_location(@_) }
sub eng { EngineTest::engine_conf(@_) }

# [ label, configuration, undef (must start) or a regex of the error ]
my @cases = (
    [ 'complete', loc('/a', eng()), undef ],
    [ 'certificate from the token',
      loc('/a', eng(cert => 'engine:pkcs11:token=scep;object=ca;type=cert')),
      undef ],
    [ 'intermediate with its chain',
      loc('/a', eng(key => 'pkcs11:token=scep;object=inter;type=private',
                    cert => $tf->('inter.pem'),
                    extra => ['CAEngineChain "' . $tf->('chain.pem') . '"'])),
      undef ],
    [ 'signer inherited from the server',
      eng() . loc('/a') . loc('/b', 'CAEngineDays 10'), undef ],
    [ 'two keys, one engine setup',
      loc('/a', eng())
      . loc('/b', eng(key => 'pkcs11:token=scep;object=inter;type=private',
                      cert => $tf->('inter.pem'))), undef ],
    [ 'PIN in the key URI (warned)',
      loc('/a', eng(pin_file => '',
                    key => EngineTest::KEY_URI . ";pin-value=$pin")),
      qr/CA05041: CAEngineKey .*pin-value=\*\*\* .*prefer CAEnginePINFile/,
      'passes' ],

    [ 'wrong PIN', loc('/a', eng(pin_file => $wrong)),
      qr/\[ca_engine:crit\].*CA05014: CAEngineKey pkcs11:token=scep;object=ca;type=private \(\S+:\d+\): wrong or missing PIN: the token refused the PIN of CAEnginePINFile \Q$wrong\E/ ],
    [ 'no PIN', loc('/a', eng(pin_file => '')),
      qr/CA05014: .*wrong or missing PIN: the token wants a PIN and none is configured/ ],
    [ 'missing key',
      loc('/a', eng(key => 'pkcs11:token=scep;object=nokey;type=private')),
      qr/\[ca_engine:crit\].*CA05015: CAEngineKey pkcs11:token=scep;object=nokey;type=private \(\S+:\d+\): missing key: engine pkcs11 has no such private key/ ],
    [ 'missing token',
      loc('/a', eng(key => 'pkcs11:token=nosuch;object=ca;type=private')),
      qr/CA05015: .*missing key/ ],
    [ 'missing engine', loc('/a', eng(engine => 'nosuchengine')),
      qr/\[ca_engine:crit\].*CA05001: CAEngine nosuchengine \(\S+:\d+\): no such engine/ ],
    [ 'not a PKCS#11 module',
      loc('/a', eng(module => '/nonexistent/libnothing.so')),
      qr/CA05042: .*the engine failed: engine pkcs11 cannot load keys/ ],
    [ 'unknown control command',
      loc('/a', eng(extra => ['CAEngineControl NO_SUCH_COMMAND x'])),
      qr/CA05003: CAEngineControl NO_SUCH_COMMAND x \(\S+:\d+\): engine pkcs11 refused the command/ ],
    [ 'certificate of another key',
      loc('/a', eng(cert => $tf->('nextca.pem'))),
      qr/CA05016: CAEngineKey \S+ does not match CAEngineCertificate \S+nextca.pem/ ],
    [ 'certificate missing from the token',
      loc('/a', eng(cert => 'engine:pkcs11:token=scep;object=none;type=cert')),
      qr/CA05006: CAEngineCertificate engine:pkcs11:token=scep;object=none;type=cert .*cannot load the certificate/ ],
    [ 'chain that does not issue the CA',
      loc('/a', eng(extra => ['CAEngineChain "' . $tf->('chain.pem') . '"'])),
      qr/CA05011: CAEngineChain \S+chain.pem .*did not issue/ ],
    [ 'no certificate in the section',
      loc('/a', 'CAEngine pkcs11', 'CAEngineKey "' . EngineTest::KEY_URI . '"'),
      qr/CA05012: mod_ca_engine signer at \S+:\d+: CAEngineCertificate is missing from the section/ ],
    [ 'a section replaces the inherited signer',
      eng() . loc('/a', 'CAEngineKey "pkcs11:token=scep;object=inter;type=private"'),
      qr/CA05012: .*CAEngine is missing from the section/ ],
    [ 'two PINs', loc('/a', eng(extra => ['CAEngineControl PIN 0000'])),
      qr/CA05013: .*both CAEnginePINFile and CAEngineControl PIN give a PIN/ ],
    [ 'one engine, two setups',
      loc('/a', eng()) . loc('/b', eng(pin_file => $wrong)),
      qr/CA05002: CAEngine pkcs11 \(\S+:\d+\) is configured differently from the same engine at \S+:\d+/ ],
    [ 'missing PIN file',
      loc('/a', eng(pin_file => "$dir/no-such.pin")),
      qr/CAEnginePINFile \S+no-such.pin: cannot read the file/ ],
    [ 'empty PIN file',
      loc('/a', eng(pin_file => spit("$dir/empty.pin", "\n"))),
      qr/CAEnginePINFile \S+empty.pin: the file must hold the PIN on one line/ ],
    [ 'bad days', loc('/a', eng(extra => ['CAEngineDays 0'])),
      qr/CAEngineDays must be a number of days from 1 to 36500, not '0'/ ],
    [ 'bad extension',
      loc('/a', eng(extra => ['CAEngineExtension keyUsage nonsense'])),
      qr/CAEngineExtension keyUsage nonsense: not a valid extension/ ],
    [ 'subjectAltName extension',
      loc('/a', eng(extra => ['CAEngineExtension subjectAltName DNS:x'])),
      qr/CAEngineExtension subjectAltName: the subjectAltName is taken from the request/ ],
    [ 'next certificate that is no CA',
      loc('/a', eng(extra => ['CAEngineNextCertificate "' . $tf->('ra.pem') . '"'])),
      qr/CA05019: CAEngineNextCertificate \S+ra.pem .*is not a CA certificate/ ],
    [ 'control without a command',
      loc('/a', eng(extra => ['CAEngineControl'])),
      qr/CAEngineControl takes 1-2 arguments/ ],
);

# start attempts: httpd -k start must fail and say why
my @starts = (
    [ 'wrong PIN', loc('/a', eng(pin_file => $wrong)), qr/CA05014: .*wrong or missing PIN/ ],
    [ 'missing key',
      loc('/a', eng(key => 'pkcs11:token=scep;object=nokey;type=private')),
      qr/CA05015: .*missing key/ ],
    [ 'missing engine', loc('/a', eng(engine => 'nosuchengine')),
      qr/CA05001: .*no such engine/ ],
);

plan tests => 2 * @cases + 3 * @starts + 2,
    need EngineTest::requirements();

my $all = '';
for my $case (@cases) {
    my($label, $body, $want, $passes) = @$case;
    my $h = EngineTest::Httpd->new(body => $body);
    my $r = $h->configtest;
    t_debug("$label: exit $r->{rc}: $r->{err}");
    $all .= $r->{err} . $r->{out};
    if (!defined $want || $passes) {
        ok t_cmp($r->{rc}, 0, "$label: httpd -t passes");
        ok t_cmp($r->{err}, $want // qr/Syntax OK/, "$label: says so");
    }
    else {
        ok t_cmp($r->{rc} != 0 ? 1 : 0, 1, "$label: httpd -t fails");
        ok t_cmp($r->{err}, $want, "$label: says why");
    }
}

for my $case (@starts) {
    my($label, $body, $want) = @$case;
    my $h = EngineTest::Httpd->new(body => $body);
    my $ok = $h->start;
    my $r = $h->{last};
    my $text = $r->{err} . $r->{out} . $h->error_log;
    t_debug("start, $label: exit $r->{rc}: $text");
    $all .= $text;
    ok t_cmp($ok, 0, "start, $label: httpd does not start");
    ok t_cmp($r->{rc} != 0 ? 1 : 0, 1, "start, $label: non-zero exit");
    ok t_cmp($text, $want, "start, $label: says why");
    $h->stop if $ok;
}

ok t_cmp(index($all, $pin), -1, 'the PIN is never in the output');
ok t_cmp(index($all, EngineTest::WRONG_PIN), -1,
         'nor is the wrong PIN');
