package EngineTest;

# Helpers for mod_ca_engine's tests (t/ca_engine/*.t): the SoftHSM2 token
# t/hsm/setup.sh made before the server started, enrolments through the
# project's test client, and private httpd instances for start-up failures,
# restarts and MPM variants.
#
#   plan tests => N, need EngineTest::requirements();
#   my $e = EngineTest::enrol($client, '/scep-engine', subject => '/CN=x');
#   ok $e->{rep}->{pkiStatus} eq 'SUCCESS';
#
# The locations of the test server are those of
# t/conf/ca_engine.last.conf.in. Loading this module puts SOFTHSM2_CONF
# into the environment, so that pkcs11-tool, openssl and the private
# servers see the same token as the test server.

use strict;
use warnings FATAL => 'all';

use Apache::Test ();
use Apache::TestRequest ();
use File::Spec::Functions qw(catfile catdir);
use Time::HiRes ();
use ScepTest qw(top_dir scratch_dir run_cmd slurp spit);
use ScepClient ();

use constant MODULE_PATH => '/usr/lib/softhsm/libsofthsm2.so';
use constant KEY_URI     => 'pkcs11:token=scep;object=ca;type=private';
use constant WRONG_PIN   => 'wrong-Pin-0000';

sub token_dir {
    return catdir(Apache::Test::vars('serverroot'), 'hsm', 'token');
}

sub token_file {
    return catfile(token_dir(), shift);
}

sub softhsm_conf { token_file('softhsm2.conf') }

# the token's user PIN (t/hsm/setup.sh), to look for it where it must not be
sub pin {
    my $pin = slurp(token_file('pin')) // return undef;
    $pin =~ s/\s+$//;
    return $pin;
}

$ENV{SOFTHSM2_CONF} = softhsm_conf() if -e softhsm_conf();

# mod_ca_engine.so in the modules directory, or undef
sub module_file {
    my $dir = ScepTest::modules_dir() // return undef;
    my $so = catfile($dir, 'mod_ca_engine.so');
    return -e $so ? $so : undef;
}

# For plan(): what the tests need, as Apache::Test's need() takes it.
sub requirements {
    return {
        'mod_ca_engine.so is built' => sub { module_file() },
        'the SoftHSM2 token of t/hsm/setup.sh exists (softhsm2, opensc, '
            . 'libengine-pkcs11-openssl: .ci/install)' =>
            sub { -e token_file('ready') },
        'the test server has the engine locations (SOFTHSM2_CONF set by '
            . 't/TEST.PL from t/conf/ca_engine.setup)' => sub {
            Apache::TestRequest::GET('/scep-engine?operation=GetCACaps')
                ->code == 200
        },
        'tools/scep-test-client is built' =>
            sub { -x ScepClient::client_path() },
    };
}

# A test client encrypting to the token RA.
sub client {
    return ScepClient->new(ra => token_file('ra.pem'), @_);
}

# enrol(CLIENT, PATH, %request_opts [, base => 'http://host:port']):
# ScepClient::enrol with a subject of its own unless one is given
sub enrol {
    my($c, $path, %o) = @_;
    my $base = delete $o{base} // '';
    $o{subject} //= "/CN=engine-$$-" . int(rand(1e9)) . '/O=mod_ca_engine tests';
    return $c->enrol("$base$path", %o);
}

# openssl verify of a certificate against CA (and untrusted chain) files
sub verifies {
    my($cert, $ca, $untrusted) = @_;
    return 0 unless $cert && -s $cert;
    my $r = run_cmd('openssl', 'verify', '-CAfile', $ca,
                    ($untrusted ? ('-untrusted', $untrusted) : ()), $cert);
    return $r->{rc} == 0 && $r->{out} =~ /: OK\s*$/ ? 1 : 0;
}

# serial, issuer, notBefore/notAfter (epoch) and the text of a certificate
sub cert_info {
    my $file = shift;
    my $r = run_cmd('openssl', 'x509', '-in', $file, '-noout', '-serial',
                    '-issuer', '-nameopt', 'RFC2253', '-startdate',
                    '-enddate', '-ext',
                    'basicConstraints,keyUsage,extendedKeyUsage');
    return undef if $r->{rc} != 0;
    my %i = (text => $r->{out});
    $i{serial} = $1 if $r->{out} =~ /^serial=([0-9A-F]+)/m;
    $i{issuer} = $1 if $r->{out} =~ /^issuer=\s*(.*?)\s*$/m;
    for my $k (qw(notBefore notAfter)) {
        next unless $r->{out} =~ /^\Q$k\E=(.*?)\s*$/m;
        my $d = run_cmd('date', '-u', '-d', $1, '+%s');
        $i{$k} = $d->{rc} == 0 ? ($d->{out} =~ s/\s+//gr) : undef;
    }
    return \%i;
}

# The lines of the test server's error_log written since byte offset $from
sub error_log_since {
    my $from = shift // 0;
    my $text = slurp(catfile(Apache::Test::vars('t_logs'), 'error_log'))
        // '';
    return substr($text, $from);
}

sub error_log_size {
    return -s catfile(Apache::Test::vars('t_logs'), 'error_log') // 0;
}

# The configuration of an engine signer, for private servers:
# engine_conf(key => URI, cert => FILE, pin_file => FILE, extra => [lines])
sub engine_conf {
    my %o = @_;
    my @lines = (
        'CAEngine ' . ($o{engine} // 'pkcs11'),
        ($o{no_module} ? () : ('CAEngineControl MODULE_PATH '
                               . ($o{module} // MODULE_PATH))),
        (defined $o{pin_file} && !length $o{pin_file} ? ()
         : ('CAEnginePINFile "' . ($o{pin_file} // token_file('pin')) . '"')),
        'CAEngineKey "' . ($o{key} // KEY_URI) . '"',
        'CAEngineCertificate "' . ($o{cert} // token_file('ca.pem')) . '"',
        @{ $o{extra} // [] },
    );
    return join "\n", @lines, '';
}

# A <Location> for SCEP with the token RA and the given backend lines
sub scep_location {
    my($path, @lines) = @_;
    return join "\n", "<Location $path>", '    SetHandler scep',
        '    ScepRACertificate "' . token_file('ra.pem') . '"',
        '    ScepRAKey "' . token_file('ra.key') . '"',
        '    ScepSubjectRequest *', '    CASimpleTime on',
        '    CASimpleSerialRandom on',
        (map { "    $_" } map { split /\n/ } @lines), '</Location>', '';
}

# ---------------------------------------------------------------- httpd

package EngineTest::Httpd;

# A private httpd (ScepTest::Httpd) with mod_ca_engine loaded too and a
# copy of the token (same keys, same PIN) under its own SOFTHSM2_CONF:
# SoftHSM2 rewrites its token file at every login, and logins of several
# processes at the same moment then fail now and then. One httpd makes its
# own processes take turns (the lock file in its DefaultRuntimeDir); the
# test server and the private servers would not.
#
#   my $h = EngineTest::Httpd->new(body => $conf, mpm => 'prefork');
#   my $r = $h->configtest;             # run_cmd result of httpd -t
#   $h->start or die; ...; $h->graceful; $h->stop;

use parent -norequire, 'ScepTest::Httpd';
use ScepTest qw(scratch_dir run_cmd spit);
use ScepTest::Httpd ();

sub new {
    my($class, %args) = @_;
    my $dir = $args{dir} // scratch_dir();
    my $tokens = EngineTest::token_file('tokens');
    my $r = run_cmd('cp', '-a', $tokens, "$dir/tokens");
    die "cp -a $tokens $dir/tokens: $r->{err}" if $r->{rc} != 0;
    my $conf = spit("$dir/softhsm2.conf",
        "directories.tokendir = $dir/tokens\n"
        . "objectstore.backend = file\nlog.level = ERROR\n"
        . "slots.removable = false\n");
    chmod 0644, $conf;
    return $class->SUPER::new(modules => [qw(ca ca_simple ca_engine scep)],
                              loglevel => 'info ca_engine:debug', %args,
                              dir => $dir,
                              env => { SOFTHSM2_CONF => $conf });
}

package EngineTest;

1;
