# The engine across the life of httpd, on private servers under each MPM:
# every child opens the engine and loads the key itself (CA05024),
# enrolments work after graceful and hard restarts, a changed key takes
# effect at a graceful restart, and httpd stops cleanly. Each reading of
# the configuration is checked afresh: a PIN file that now holds a wrong
# PIN makes "httpd -k graceful" refuse, and a bare SIGUSR1 stop the server
# with the reason, instead of going on with the old login. An engine
# loaded through "dynamic" survives graceful restarts too. No crash, and
# no PIN, in the error log.

use strict;
use warnings FATAL => 'all';

use Apache::Test;
use Apache::TestUtil;
use Time::HiRes ();
use ScepTest qw(spit);
use ScepClient ();
use EngineTest;

my @mpms = qw(event worker prefork);
my $per_mpm = 14;

plan tests => $per_mpm * @mpms + 10, need EngineTest::requirements();

my $tf = \&EngineTest::token_file;
my $pin = EngineTest::pin() // 'unknown-pin';

sub conf_for {
    my $which = shift;
    my %o = $which eq 'inter'
        ? (key => 'pkcs11:token=scep;object=inter;type=private',
           cert => $tf->('inter.pem'),
           extra => ['CAEngineChain "' . $tf->('chain.pem') . '"'])
        : ();
    return "StartServers 2\n"
         . EngineTest::scep_location('/scep-engine',
                                     EngineTest::engine_conf(%o));
}

sub enrolled {
    my($h, $label, $ca, $untrusted) = @_;
    my $c = EngineTest::client();
    my $e = EngineTest::enrol($c, '/scep-engine', base => $h->base);
    t_debug("$label: HTTP $e->{code} " . ScepClient::describe($e->{rep}));
    return ($e->{rep}->{pkiStatus} // '') eq 'SUCCESS'
        && EngineTest::verifies($e->{rep}->{cert_file}, $ca, $untrusted)
        ? 1 : 0;
}

for my $mpm (@mpms) {
    my $h = EngineTest::Httpd->new(mpm => $mpm, body => conf_for('ca'));
    ok t_cmp($h->start, 1, "$mpm: starts");
    t_debug($h->{last}->{err}) unless $h->{started};
    ok t_cmp(enrolled($h, "$mpm first", $tf->('ca.pem')), 1,
             "$mpm: enrolment signed by the token CA");
    my @loaded = $h->error_log =~ /CA05024: .*loaded in child process (\d+)/g;
    ok t_cmp(scalar(@loaded) >= 1 ? 1 : 0, 1,
             "$mpm: children loaded the key themselves");

    ok t_cmp($h->graceful, 1, "$mpm: graceful restart");
    ok t_cmp(enrolled($h, "$mpm graceful", $tf->('ca.pem')), 1,
             "$mpm: enrolment after a graceful restart");
    ok t_cmp($h->graceful, 1, "$mpm: second graceful restart");
    ok t_cmp(enrolled($h, "$mpm graceful 2", $tf->('ca.pem')), 1,
             "$mpm: enrolment after the second graceful restart");

    # another key and CA at the next reading of the configuration
    my $conf = ScepTest::slurp($h->conf);
    my $new = conf_for('inter');
    $conf =~ s/StartServers 2\n.*\z/$new/s;
    spit($h->conf, $conf);
    ok t_cmp($h->graceful, 1, "$mpm: graceful restart with another key");
    ok t_cmp(enrolled($h, "$mpm new key", $tf->('root.pem'),
                      $tf->('inter.pem')), 1,
             "$mpm: now signed by the intermediate CA in the token");

    ok t_cmp($h->graceful('restart'), 1, "$mpm: hard restart");
    ok t_cmp(enrolled($h, "$mpm restart", $tf->('root.pem'),
                      $tf->('inter.pem')), 1,
             "$mpm: enrolment after a hard restart");

    $h->stop;
    my $log = $h->error_log;
    t_debug($log) if $log =~ /Segmentation|exit signal|CA0502[35]/;
    ok t_cmp($log, qr/caught SIGTERM, shutting down/, "$mpm: stopped");
    ok t_cmp(scalar(() = $log =~ /Segmentation fault|exit signal|AH0005[12]|AddressSanitizer|runtime error:|CA0502[35]/g),
             0, "$mpm: no crash, every child had its key");
    ok t_cmp(index($log, $pin), -1, "$mpm: no PIN in the error log");
}

# a PIN file that changes under a running server
{
    my $h = EngineTest::Httpd->new();
    my $pinfile = spit("$h->{dir}/token.pin", "$pin\n");
    chmod 0600, $pinfile;
    my $conf = ScepTest::slurp($h->conf) . "StartServers 2\n"
        . EngineTest::scep_location('/scep-engine',
              EngineTest::engine_conf(pin_file => $pinfile));
    spit($h->conf, $conf);
    ok t_cmp($h->start, 1, 'PIN file: starts');
    ok t_cmp(enrolled($h, 'PIN file', $tf->('ca.pem')), 1,
             'PIN file: enrolment');

    spit($pinfile, EngineTest::WRONG_PIN . "\n");
    my $r = $h->httpd('-k', 'graceful');
    t_debug("graceful with a wrong PIN: $r->{rc}: $r->{err}");
    ok t_cmp($r->{rc} != 0 ? 1 : 0, 1,
             'wrong PIN: httpd -k graceful refuses');
    ok t_cmp($r->{err}, qr/CA05014: .*wrong or missing PIN/,
             'wrong PIN: and says why');
    ok t_cmp(enrolled($h, 'still running', $tf->('ca.pem')), 1,
             'wrong PIN: the running server still signs');

    # SIGUSR1 skips that check: the parent's own probe finds the PIN
    my $pid = $h->pid;
    kill 'USR1', $pid;
    for (1 .. 100) {
        last unless kill 0, $pid;
        Time::HiRes::sleep(0.1);
    }
    ok t_cmp(kill(0, $pid) ? 1 : 0, 0,
             'wrong PIN: SIGUSR1 stops httpd rather than keep the old login');
    ok t_cmp($h->error_log, qr/CA05014: .*wrong or missing PIN/,
             'wrong PIN: the reason is in the error log');
    $h->{started} = 0;
    ok t_cmp(index($h->error_log, EngineTest::WRONG_PIN), -1,
             'wrong PIN: not in the error log');
}

# the pkcs11 engine loaded by path through "dynamic"
{
    my $enginesdir = (ScepTest::run_cmd('openssl', 'version', '-e')->{out}
                      =~ /ENGINESDIR: "([^"]+)"/)[0] // '';
    my $engine = EngineTest::engine_conf(engine => 'dynamic');
    $engine =~ s{^CAEngine dynamic\n}{CAEngine dynamic
CAEngineControl SO_PATH $enginesdir/pkcs11.so
CAEngineControl ID pkcs11
CAEngineControl LOAD
}m;
    my $h = EngineTest::Httpd->new(body => "StartServers 2\n"
        . EngineTest::scep_location('/scep-engine', $engine));
    ok t_cmp($h->start && enrolled($h, 'dynamic', $tf->('ca.pem')) ? 1 : 0,
             1, 'dynamic: starts and signs');
    ok t_cmp($h->graceful && $h->graceful
             && enrolled($h, 'dynamic after graceful', $tf->('ca.pem'))
             ? 1 : 0, 1, 'dynamic: signs after two graceful restarts');
    t_debug($h->error_log) unless $h->{started};
    $h->stop;
}
