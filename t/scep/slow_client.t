# Slow clients cannot hold a worker for ever (mod_reqtimeout).
#
# The scep_slow virtual host (t/conf/extra.conf.in) has
# RequestReadTimeout header=3 body=3,MinRate=500. More clients than the
# server has workers open a connection to it: most send the headers of a
# real PKIOperation POST and then its body one byte a second (the body
# would take most of an hour), the others send a request header one byte a
# second and never end it (slowloris). Each must be answered 408 and
# disconnected long before it could finish: within 30 s of its start, ten
# times the timeout, which is a bound on correctness and not a speed
# figure. Meanwhile other clients enroll: with every worker held by a slow
# client, that only works when the server lets the slow ones go. Last, the
# very request the slow clients trickled, sent at once, gets its
# certificate: the slow ones were cut off for being slow, not for what they
# sent.

use strict;
use warnings FATAL => 'all';

use Apache::Test;
use Apache::TestRequest;
use Apache::TestUtil;
use IO::Select ();
use IO::Socket::INET ();
use POSIX ();
use Time::HiRes ();
use ScepTest qw(slurp spit);
use ScepClient qw(have_client);

# seconds a slow client may live, against RequestReadTimeout's 3
use constant BOUND => 30;

plan tests => 16, need('scep', 'ca_simple', 'reqtimeout', have_client());

Apache::TestRequest::module('scep_slow');
my $hostport = Apache::TestRequest::hostport();
t_debug("scep_slow server at $hostport");

# the worker threads (processes for prefork) of the test server
my $vars = Apache::Test::vars();
my $workers = ($vars->{scep_mpm} // 'event') eq 'prefork'
    ? $vars->{maxclients} : $vars->{maxclientsthreadedmpm};
my $n_body = $workers + 10;
my $n_header = 5;
t_debug("$workers workers, $n_body slow bodies, $n_header slow headers");
ok t_cmp($n_body + $n_header > $workers, 1,
         "more slow clients ($n_body + $n_header) than workers ($workers)");

my $c = ScepClient->new;
my $req = $c->request(subject => '/CN=slow-client.example.org');
my $der = $req->{der};
my $len = length $der;

my $head = "POST /scep?operation=PKIOperation HTTP/1.1\r\n"
    . "Host: $hostport\r\n"
    . "Content-Type: application/x-pki-message\r\n"
    . "Content-Length: $len\r\n\r\n";
my $slow_header = "GET /scep?operation=GetCACaps HTTP/1.1\r\n"
    . "Host: $hostport\r\n" . 'X-Slow: ' . ('s' x 4000);

# ------------------------------------------------------------ slow clients
# A child process keeps them: it connects them all, says "ready" on a pipe,
# then sends each one byte a second until the server answers or closes, and
# writes one line per client to $results:
#   kind seconds-from-start bytes-of-payload-sent status-or-"closed"
my $results = $c->dir . '/slow-results';
pipe my $ready_r, my $ready_w or die "pipe: $!";
my $pid = fork;
die "fork: $!" unless defined $pid;
if ($pid == 0) {
    close $ready_r;
    POSIX::_exit(trickle() ? 0 : 1);
}
close $ready_w;
my $ready = <$ready_r> // '';
chomp $ready;
ok t_cmp($ready, 'ready',
         'every slow client connected and started its request');

# ------------------------------------------------- meanwhile, enrollments
# with every worker held by a slow client, an answer comes only once the
# server lets slow ones go: none within BOUND seconds is a failure
my $ua = Apache::TestRequest::user_agent();
my $ua_timeout = $ua->timeout(BOUND);
for my $i (1 .. 3) {
    my $r = $c->request(subject => "/CN=while-slow-$i.example.org");
    my $res = $c->post('/scep', $r);
    t_debug("enrollment $i while slow clients wait: " . $res->status_line);
    ok t_cmp($res->code, 200, "enrollment $i beside the slow clients: HTTP");
    my $rep = $res->code == 200 ? $c->reply($res, $r) : {};
    ok t_cmp($rep->{pkiStatus} // '', 'SUCCESS',
             "enrollment $i beside the slow clients: SUCCESS");
}

$ua->timeout($ua_timeout);

waitpid $pid, 0;
ok t_cmp($? >> 8, 0, 'the slow-client process ended by itself');

my @lines = split /\n/, slurp($results) // '';
my @body = map { [split ' '] } grep { /^body / } @lines;
my @hdr = map { [split ' '] } grep { /^header / } @lines;
t_debug($_) for @lines;
ok t_cmp(scalar @body, $n_body, 'every slow body client was followed');
ok t_cmp(scalar(grep { $_->[1] <= BOUND } @body), $n_body,
         'every slow body client was let go within ' . BOUND . ' s');
ok t_cmp(scalar(grep { $_->[3] eq '408' } @body), $n_body,
         'every slow body client got 408 Request Timeout');
ok t_cmp(scalar(grep { $_->[2] < $len } @body), $n_body,
         "none had sent the whole body ($len bytes)");
ok t_cmp(scalar(grep { $_->[1] <= BOUND } @hdr), $n_header,
         'every slow header client was let go within ' . BOUND . ' s');
ok t_cmp(scalar(grep { $_->[3] eq '408' } @hdr), $n_header,
         'every slow header client got 408 Request Timeout');

# ------------------------------------------------- the same bytes at once
my $res = $c->post('/scep', $req);
my $rep = $res->code == 200 ? $c->reply($res, $req) : {};
ok t_cmp($rep->{pkiStatus} // $res->status_line, 'SUCCESS',
         'the request the slow clients trickled, sent at once: SUCCESS');

sub trickle {
    my $t0 = Time::HiRes::time();
    my(@c, $ok);
    for my $i (1 .. $n_body + $n_header) {
        my $kind = $i <= $n_body ? 'body' : 'header';
        my $s = IO::Socket::INET->new(PeerAddr => $hostport, Timeout => 10)
            or return 0;
        my $first = $kind eq 'body' ? $head : substr($slow_header, 0, 40);
        defined syswrite($s, $first) or return 0;
        push @c, { s => $s, kind => $kind, sent => 0, t0 => $t0,
                   rest => $kind eq 'body' ? $der : substr($slow_header, 40),
                   got => '' };
    }
    print $ready_w "ready\n";
    close $ready_w;

    local $SIG{PIPE} = 'IGNORE';
    my $deadline = $t0 + 3 * BOUND;
    my $next_byte = Time::HiRes::time() + 1;
    while (grep { !$_->{end} } @c) {
        my $now = Time::HiRes::time();
        last if $now > $deadline;
        my $sel = IO::Select->new(map { $_->{s} } grep { !$_->{end} } @c);
        my @can = $sel->can_read($next_byte > $now ? $next_byte - $now : 0);
        for my $x (grep { !$_->{end} } @c) {
            next unless grep { $_ == $x->{s} } @can;
            my $n = sysread $x->{s}, my $buf, 4096;
            if ($n) {
                $x->{got} .= $buf;
                next;
            }
            $x->{end} = Time::HiRes::time();
        }
        next if Time::HiRes::time() < $next_byte;
        $next_byte += 1;
        for my $x (grep { !$_->{end} && length $_->{rest} } @c) {
            # a refused write: the server has closed; its answer, if any,
            # is read above
            next unless syswrite($x->{s}, substr($x->{rest}, 0, 1)) ;
            substr($x->{rest}, 0, 1, '');
            $x->{sent}++;
        }
    }
    my $out = '';
    for my $x (@c) {
        my $status = $x->{got} =~ m{^HTTP/1\.\d (\d{3})} ? $1 : 'closed';
        my $secs = $x->{end} ? sprintf('%.1f', $x->{end} - $x->{t0})
                             : 99999;
        $out .= "$x->{kind} $secs $x->{sent} $status\n";
    }
    spit($results, $out);
    return 1;
}
