package CaDiskTest;

# Helpers for the mod_ca_disk tests (t/ca_disk/*.t): enrolling clients
# built on ScepClient (tools/scep-test-client), posting from many processes
# at once, the approval tool tools/ca-disk-sign, checks of what mod_ca_disk
# left on disk, and a private httpd for the tests that kill children.
#
# The locations and directories of the test server are those of
# t/conf/ca_disk.last.conf.in:
#   /scep-disk   requests wait in t/disk/requests, certificates in
#                t/disk/certs
#   /scep-store  mod_ca_simple signs, certificates stored in t/disk/store

use strict;
use warnings FATAL => 'all';

use Apache::Test ();
use Apache::TestRequest ();
use Digest::SHA ();
use File::Find ();
use File::Spec ();
use File::Spec::Functions qw(catfile catdir);
use HTTP::Request ();
use HTTP::Response ();
use ScepTest::Httpd ();
use LWP::UserAgent ();
use MIME::Base64 ();
use POSIX ();
use Time::HiRes ();
use ScepTest qw(:all);
use ScepClient ();

use Exporter 'import';
our @EXPORT_OK = qw(
    have_ca_disk disk_dir sign_tool tid_hash
    new_client build_request send_request pkcsreq certpoll getcert
    run_parallel post_pki
    cert_serial request_file pending_files approve
    check_store der_complete pem_complete
    start_private_server stop_private_server child_pids wait_for_server
);
our %EXPORT_TAGS = (all => \@EXPORT_OK);

# ---------------------------------------------------------------- setup

# mod_ca_disk is built and its locations configured. t/TEST.PL tells
# need_module() only about the modules in its own list, so look for the
# DSO and ask the location itself.
sub have_ca_disk {
    my $dir = modules_dir() // return 0;
    return 0 unless -e catfile($dir, 'mod_ca_disk.so');
    return 0 unless -x ScepClient::client_path() && -x sign_tool();
    my $res = Apache::TestRequest::GET('/scep-disk?operation=GetCACaps');
    return $res->code == 200;
}

# t/disk/<name>: requests, certs (for /scep-disk) or store (/scep-store)
sub disk_dir {
    my $name = shift;
    return catdir(Apache::Test::vars('serverroot'), 'disk', $name);
}

sub sign_tool { catfile(top_dir(), 'tools', 'ca-disk-sign') }

# mod_ca_disk's file name for a transaction
sub tid_hash { Digest::SHA::sha256_hex(shift) }

# ---------------------------------------------------------------- client

# one ScepClient per directory: its file counter keeps names apart
my %scep_client;

# new_client(dir => DIR, name => NAME [, subject => '/CN=x', tid => TID,
#            key => FILE, base => 'http://host:port'])
# One enrolling client: its key (made by its first request unless given),
# subject, transaction ID (unique per run unless given), and the server it
# talks to (default: the Apache::Test server).
sub new_client {
    my %a = @_;
    my $name = $a{name} or die 'new_client: name';
    my $dir = $a{dir} or die 'new_client: dir';
    return {
        sc      => ($scep_client{$dir} //= ScepClient->new(dir => $dir)),
        name    => $name,
        key     => $a{key} // catfile($dir, "$name.key"),
        subject => $a{subject} // "/CN=$name-$$/O=mod_ca_disk tests",
        tid     => $a{tid} // sprintf('cadisk-%s-%d-%d-%06d', $name, $$,
                                      time, int rand 1e6),
        base    => $a{base} // base_url(),
    };
}

# POST a pkiMessage to a location with a fresh agent, so that forked test
# processes never share a connection; an absolute URL, so that it works
# for any server
sub post_pki {
    my($base, $path, $der) = @_;
    my $ua = LWP::UserAgent->new(keep_alive => 0, timeout => 60);
    my $req = HTTP::Request->new(
        POST => "$base$path?operation=PKIOperation");
    $req->header('Content-Type' => 'application/x-pki-message');
    $req->content($der);
    return $ua->request($req);
}

# A pkiMessage of the client (ScepClient request options)
sub build_request {
    my($c, %o) = @_;
    return $c->{sc}->request(key => $c->{key}, transaction_id => $c->{tid},
                             %o);
}

# The reply to a request, taken apart (ScepClient::reply), plus
#   http  the HTTP status
#   cert  the PEM file of the certificates of a SUCCESS (first: issued)
sub take_reply {
    my($c, $req, $res) = @_;
    my $rep = $res->code == 200 ? $c->{sc}->reply($res, $req) : {};
    $rep->{http} = $res->code;
    $rep->{cert} = $rep->{cert_file};
    return $rep;
}

sub send_request {
    my($c, $path, $req) = @_;
    return take_reply($c, $req, post_pki($c->{base}, $path, $req->{der}));
}

# PKCSReq for the client's subject
sub pkcsreq {
    my($c, $path) = @_;
    return send_request($c, $path, build_request($c,
                                                 subject => $c->{subject}));
}

# CertPoll (messageType 20) for the client's transaction
sub certpoll {
    my($c, $path) = @_;
    return send_request($c, $path, build_request($c, type => 20,
        issuer_and_subject => pki_file('ca.pem') . ":$c->{subject}"));
}

# GetCert (messageType 21) by the test CA and a serial (hex)
sub getcert {
    my($c, $path, $serial) = @_;
    return send_request($c, $path, build_request($c, type => 21,
        issuer_and_serial => pki_file('ca.pem') . ":$serial"));
}

# run_parallel(\@clients, \@requests, $path): POST every built request at
# the same moment, one process each; returns the seconds from the start
# signal to the last answer, and the replies in order (as send_request).
sub run_parallel {
    my($clients, $reqs, $path) = @_;
    pipe my $go_r, my $go_w or die "pipe: $!";
    my @pids;
    for my $i (0 .. $#$reqs) {
        my $pid = fork;
        die "fork: $!" unless defined $pid;
        if ($pid == 0) {
            close $go_w;
            my $buf;
            sysread $go_r, $buf, 1;     # EOF: everybody go
            my $res = post_pki($clients->[$i]{base}, $path,
                               $reqs->[$i]{der});
            my $out = "$reqs->[$i]{file}.reply";
            spit("$out.http", $res->code);
            spit($out, $res->content);
            POSIX::_exit(0);
        }
        push @pids, $pid;
    }
    close $go_r;
    my $t0 = Time::HiRes::time();
    close $go_w;
    waitpid $_, 0 for @pids;
    my $secs = Time::HiRes::time() - $t0;

    my @replies;
    for my $i (0 .. $#$reqs) {
        my $out = "$reqs->[$i]{file}.reply";
        my $res = HTTP::Response->new(slurp("$out.http") || 0);
        $res->content(slurp($out) // '');
        push @replies, take_reply($clients->[$i], $reqs->[$i], $res);
    }
    return ($secs, @replies);
}

# ---------------------------------------------------------------- files

# serial of a certificate file, lower-case hex as mod_ca_disk names it
sub cert_serial {
    my $file = shift // return undef;
    my $r = run_cmd('openssl', 'x509', '-in', $file, '-noout', '-serial');
    return undef if $r->{rc} != 0;
    return $r->{out} =~ /serial=([0-9A-Fa-f]+)/ ? lc $1 : undef;
}

# the pending request file of a transaction
sub request_file {
    my($tid, $dir) = @_;
    return catfile($dir // disk_dir('requests'), tid_hash($tid) . '.der');
}

# every pending request file
sub pending_files {
    my $dir = shift // disk_dir('requests');
    opendir my $dh, $dir or return ();
    my @f = map { catfile($dir, $_) } grep { /^[0-9a-f]{64}\.der$/ }
            readdir $dh;
    closedir $dh;
    return @f;
}

# approve with tools/ca-disk-sign; @what: request files or '--all'; the
# directories of the test server unless { requests => D, certs => D }
# comes first
sub approve {
    my %o = ref $_[0] eq 'HASH' ? %{ shift() } : ();
    return run_cmd({ timeout => 60 }, sign_tool(),
                   '-c', pki_file('ca.pem'), '-k', pki_file('ca.key'),
                   '-r', $o{requests} // disk_dir('requests'),
                   '-o', $o{certs} // disk_dir('certs'), @_);
}

# Whether bytes are one whole DER SEQUENCE (a file cut short is not)
sub der_complete {
    my $der = shift // return 0;
    return 0 if length($der) < 2 || ord(substr $der, 0, 1) != 0x30;
    my($len, $hdr) = (ord(substr $der, 1, 1), 2);
    if ($len & 0x80) {
        my $n = $len & 0x7f;
        return 0 if $n < 1 || $n > 4 || length($der) < 2 + $n;
        $len = 0;
        $len = ($len << 8) | ord(substr $der, 2 + $_, 1) for 0 .. $n - 1;
        $hdr += $n;
    }
    return $hdr + $len == length $der;
}

sub pem_complete {
    my $text = shift // return 0;
    return 0 unless $text =~
        /^-----BEGIN CERTIFICATE-----\r?\n(.+?)-----END CERTIFICATE-----\r?\n?\z/s;
    return der_complete(MIME::Base64::decode_base64($1));
}

# check_store(DIR [, SINCE]): walk DIR and sort every file into
#   ok    certificates (*.pem) and requests (*.der) that parse
#   bad   files with a final name that do not parse, or any other name
#   tmp   ".tmp.*" files (a writer's temporary, never looked up)
# Files changed since SINCE (epoch seconds; default: when the test
# started) are parsed by openssl; older ones, which earlier runs checked
# the same way, only for being whole (the store grows with every run).
sub check_store {
    my($dir, $since) = @_;
    $since //= $^T - 2;
    my %out = (ok => [], bad => [], tmp => []);
    File::Find::find({ no_chdir => 1, wanted => sub {
        return unless -f $_;
        my $name = (File::Spec->splitpath($_))[2];
        my $fresh = (stat _)[9] >= $since;
        my $good;
        if ($name =~ /^\.tmp\./) {
            push @{ $out{tmp} }, $_;
            return;
        }
        elsif ($name =~ /^(?:[0-9a-f]{64}|-?[0-9a-f]+)\.pem$/) {
            $good = pem_complete(slurp($_))
                && (!$fresh || run_cmd('openssl', 'x509', '-in', $_,
                                       '-noout')->{rc} == 0);
        }
        elsif ($name =~ /^[0-9a-f]{64}\.der$/) {
            $good = der_complete(slurp($_))
                && (!$fresh || run_cmd('openssl', 'req', '-inform', 'DER',
                                       '-in', $_, '-noout')->{rc} == 0);
        }
        push @{ $out{ $good ? 'ok' : 'bad' } }, $_;
    } }, $dir);
    return \%out;
}

# ---------------------------------------------------------------- servers

# start_private_server(DIR): an httpd of its own (ScepTest::Httpd), for
# tests that kill its children; /scep-disk and /scep-store as in
# t/conf/ca_disk.last.conf.in with their directories under DIR/disk.
# Returns { base, pid, dir, conf, error_log } or dies.
sub start_private_server {
    my $dir = shift;
    my $pki = pki_dir();
    my $locations = '';
    for my $loc (['/scep-disk', "CADiskRequestDirectory \"$dir/disk/requests\"\n"
                  . "    CADiskCertificateDirectory \"$dir/disk/certs\""],
                 ['/scep-store', "CADiskCertificateDirectory \"$dir/disk/store\""]) {
        $locations .= <<EOF;
<Location $loc->[0]>
    SetHandler scep
    ScepRACertificate "$pki/ra.pem"
    ScepRAKey "$pki/ra.key"
    ScepSubjectRequest *
    ScepSubjectAltNameRequest *
    CASimpleCertificate "$pki/ca.pem"
    CASimpleKey "$pki/ca.key"
    CASimpleTime on
    CASimpleSerialRandom on
    $loc->[1]
</Location>
EOF
    }
    my $h = ScepTest::Httpd->new(dir => $dir, body => $locations,
                                 modules => [qw(ca ca_simple ca_disk scep)],
                                 loglevel => 'info ca_disk:debug');
    $h->start or die "cannot start the private httpd: "
                     . ($h->{last}->{err} // '') . $h->error_log;
    my $srv = { httpd => $h, base => $h->base, dir => $dir,
                conf => $h->conf, error_log => $h->error_log_file,
                pid => $h->pid };
    die 'private httpd wrote no pid file: ' . $h->error_log
        unless $srv->{pid};
    my $res = wait_for_server($srv->{base}, '/scep-store', 30);
    die 'private httpd does not answer: ' . $h->error_log
        unless $res->code == 200;
    return $srv;
}

sub stop_private_server {
    my $srv = shift;
    return unless $srv && $srv->{httpd};
    $srv->{httpd}->stop;
}

# the children of a process, from /proc
sub child_pids {
    my $ppid = shift // return ();
    my @kids;
    opendir my $dh, '/proc' or return ();
    for my $pid (grep { /^\d+$/ } readdir $dh) {
        open my $fh, '<', "/proc/$pid/stat" or next;
        my $stat = <$fh> // '';
        close $fh;
        # pid (comm) state ppid ...; comm may hold spaces and parentheses
        push @kids, $pid if $stat =~ /\)\s+\S+\s+(\d+)\s/ && $1 == $ppid;
    }
    closedir $dh;
    return @kids;
}

# GetCACaps on a location until it answers 200 (children respawning)
sub wait_for_server {
    my($base, $path, $seconds) = @_;
    my $ua = LWP::UserAgent->new(keep_alive => 0, timeout => 10);
    my $url = "$base$path?operation=GetCACaps";
    my $until = time + ($seconds // 30);
    while (time < $until) {
        my $res = $ua->get($url);
        return $res if $res->code == 200;
        Time::HiRes::sleep(0.25);
    }
    return $ua->get($url);
}

1;
