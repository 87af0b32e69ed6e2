# Many enrolments at once, each signed in the token: all succeed, with
# distinct serial numbers, on the test server (event MPM: threads of a few
# processes share each process's PKCS#11 session pool; libp11 and SoftHSM2
# lock for themselves, CAEngineSerialize is off) and on a private prefork
# server with CAEngineSerialize on (one signature at a time per process).

use strict;
use warnings FATAL => 'all';

use Apache::Test;
use Apache::TestRequest;
use Apache::TestUtil;
use POSIX ();
use ScepTest qw(:all);
use ScepClient qw(error_log_clean);
use EngineTest;

my $clients = 16;

plan tests => 2 * 3 + 5, need EngineTest::requirements();

my $ca = EngineTest::token_file('ca.pem');

# Build the requests first (key generation is slow), then send them all at
# once from as many processes; returns the serials of the certificates that
# verify.
sub burst {
    my($label, $base) = @_;
    my $c = EngineTest::client();
    my @reqs = map {
        $c->request(subject => "/CN=$label-$_/O=mod_ca_engine tests")
    } 1 .. $clients;
    my $dir = $c->dir;
    my @pids;
    for my $i (0 .. $#reqs) {
        my $pid = fork;
        die "fork: $!" unless defined $pid;
        if ($pid == 0) {
            my $res = $c->post("$base/scep-engine", $reqs[$i]);
            spit("$dir/burst-$i.der", $res->code == 200 ? $res->content : '');
            POSIX::_exit(0);
        }
        push @pids, $pid;
    }
    waitpid $_, 0 for @pids;

    my(%serials, $ok, $verified);
    for my $i (0 .. $#reqs) {
        my $rep = $c->reply(slurp("$dir/burst-$i.der") // '', $reqs[$i]);
        t_debug("$label $i: " . ScepClient::describe($rep));
        $ok++ if ($rep->{pkiStatus} // '') eq 'SUCCESS';
        next unless EngineTest::verifies($rep->{cert_file}, $ca);
        $verified++;
        my $info = EngineTest::cert_info($rep->{cert_file});
        $serials{$info->{serial}}++ if $info && $info->{serial};
    }
    ok t_cmp($ok // 0, $clients, "$label: every enrolment succeeded");
    ok t_cmp($verified // 0, $clients,
             "$label: every certificate verifies against the token CA");
    ok t_cmp(scalar(keys %serials), $clients,
             "$label: $clients distinct serial numbers");
}

my $from = EngineTest::error_log_size();
burst('concurrent', '');
ok t_cmp(EngineTest::error_log_since($from), qr/CA05040: issued serial/,
         'issued and logged');
ok t_cmp(error_log_clean(), '', 'no crashed child in error_log');

# prefork, two children, a lock per process
my $h = EngineTest::Httpd->new(
    mpm  => 'prefork',
    body => "StartServers 2\nMinSpareServers 2\nMaxSpareServers 4\n"
          . EngineTest::scep_location('/scep-engine',
                EngineTest::engine_conf(extra => ['CAEngineSerialize on'])));
ok $h->start;
burst('serialized', $h->base);
my $log = $h->error_log;
t_debug($log) if $log =~ /CA050(?:2[35]|38)/;
ok t_cmp($log, qr/CA05040: issued serial/, 'prefork: issued and logged');
ok $log !~ /Segmentation fault|exit signal|AH0005[12]|AddressSanitizer|runtime error:/;
$h->stop;
