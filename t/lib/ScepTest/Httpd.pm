package ScepTest::Httpd;

# A private httpd for tests that cannot use the Apache::Test server: start-
# up failures, graceful restarts, other MPMs, children killed on purpose
# (whose "exit signal" lines must not land in the shared error_log, which
# other tests check for crashes). The same httpd (or sanitizer wrapper),
# User and system modules as the Apache::Test server, the suite's modules
# from the tree.
#
#   my $h = ScepTest::Httpd->new(modules => [qw(ca ca_simple scep)],
#                                body => $locations);
#   $h->start or die $h->{last}->{err};
#   ... $h->url('/scep?operation=GetCACaps') ...
#   $h->stop;                     # also done at exit for every started one
#
# new() takes: modules (default ca ca_simple scep; mod_ca first), body
# (configuration after the LoadModule lines), mpm (default $SCEP_MPM or
# event), loglevel (default info), port (default a free one), dir (default
# a fresh scratch directory), env (a hash put into httpd's environment).

use strict;
use warnings FATAL => 'all';

use Apache::Test ();
use IO::Socket::INET ();
use Time::HiRes ();
use ScepTest qw(scratch_dir run_cmd slurp spit);

my @started;

END {
    my $status = $?;
    $_->stop for grep { $_->{started} } @started;
    $? = $status;
}

sub vars { Apache::Test::vars(@_) }

sub free_port {
    my $s = IO::Socket::INET->new(LocalAddr => '127.0.0.1', LocalPort => 0,
                                  Proto => 'tcp', Listen => 1)
        or die "no free port: $!";
    my $port = $s->sockport;
    close $s;
    return $port;
}

sub port_open {
    my $port = shift;
    my $s = IO::Socket::INET->new(PeerAddr => '127.0.0.1',
                                  PeerPort => $port, Proto => 'tcp',
                                  Timeout => 1);
    return 0 unless $s;
    close $s;
    return 1;
}

# the sanitizer wrapper when the suite runs with one (scripts/asan-httpd)
sub httpd_cmd {
    my $w = vars('scep_httpd_wrapper');
    return $w ? $w : vars('httpd');
}

# LoadModule lines for the system modules it needs (unless built in) and
# for the suite's modules, in the order given
sub modules_conf {
    my($mpm, @modules) = @_;
    my $apxs = vars('apxs') || 'apxs';
    my $libexec = qx("$apxs" -q LIBEXECDIR 2>/dev/null);
    chomp $libexec;
    my $httpd = vars('httpd');
    my $builtin = qx("$httpd" -l 2>/dev/null) // '';
    my @lines;
    for my $m ("mpm_$mpm", qw(authz_core unixd log_config)) {
        next if $builtin =~ /\bmod_$m\.c\b/;
        push @lines, "LoadModule ${m}_module $libexec/mod_$m.so";
    }
    my $dir = ScepTest::modules_dir();
    push @lines, qq(LoadModule ${_}_module "$dir/mod_$_.so") for @modules;
    return join "\n", @lines, '';
}

sub new {
    my($class, %args) = @_;
    my $dir = $args{dir} // scratch_dir();
    my $port = $args{port} // free_port();
    my $mpm = $args{mpm} // ($ENV{SCEP_MPM} || 'event');
    my @modules = @{ $args{modules} // [qw(ca ca_simple scep)] };
    my $self = bless { dir => $dir, port => $port,
                       env => $args{env} // {} }, $class;
    mkdir "$dir/logs";
    my $user = '';
    if ($> == 0) {
        # the children, running as User, make their way down to $dir
        $user = "User " . (vars('user') || 'nobody') . "\n"
              . "Group " . (vars('group') || 'nogroup') . "\n";
        chmod 0755, $dir;
    }
    my $level = $args{loglevel} // 'info';
    my $head = <<EOF;
# written by t/lib/ScepTest/Httpd.pm
ServerRoot "$dir"
ServerName 127.0.0.1
Listen 127.0.0.1:$port
PidFile "$dir/logs/httpd.pid"
DefaultRuntimeDir "$dir/logs"
ErrorLog "$dir/logs/error_log"
LogLevel $level
DocumentRoot "$dir"
$user
<IfDefine SCEP_SANITIZER>
    CoreDumpDirectory "$dir/logs"
</IfDefine>

EOF
    spit("$dir/httpd.conf", $head . modules_conf($mpm, @modules) . "\n"
                            . ($args{body} // ''));
    $self->{conf} = "$dir/httpd.conf";
    push @started, $self;
    return $self;
}

sub dir  { $_[0]->{dir} }
sub conf { $_[0]->{conf} }
sub port { $_[0]->{port} }
sub base { "http://127.0.0.1:$_[0]->{port}" }
sub url  { $_[0]->base . ($_[1] // '') }
sub error_log_file { "$_[0]->{dir}/logs/error_log" }
sub error_log { slurp($_[0]->error_log_file) // '' }

# httpd ARGS with this server's configuration and environment
sub httpd {
    my($self, @args) = @_;
    local @ENV{keys %{ $self->{env} }} = values %{ $self->{env} };
    return run_cmd({ timeout => 60 }, httpd_cmd(), '-f', $self->{conf},
                   @args);
}

sub configtest { $_[0]->httpd('-t') }

# httpd -k start; the run_cmd result in $self->{last}. 1 when it answers
# and has written its pid file (the parent listens before it writes it).
sub start {
    my $self = shift;
    my $r = $self->httpd('-k', 'start');
    $self->{last} = $r;
    return 0 if $r->{rc} != 0;
    $self->{started} = 1;
    for (1 .. 100) {
        return 1 if port_open($self->{port}) && defined $self->pid;
        Time::HiRes::sleep(0.1);
    }
    return 0;
}

sub pid {
    my $self = shift;
    my $pid = slurp("$self->{dir}/logs/httpd.pid") // return undef;
    return $pid =~ /(\d+)/ ? $1 : undef;
}

# -k graceful (or restart), then wait until the parent logged that it
# runs again
sub graceful {
    my($self, $how) = @_;
    my $before = () = $self->error_log =~ /resuming normal operations/g;
    my $r = $self->httpd('-k', $how // 'graceful');
    return 0 if $r->{rc} != 0;
    for (1 .. 150) {
        my $now = () = $self->error_log =~ /resuming normal operations/g;
        return 1 if $now > $before && port_open($self->{port});
        Time::HiRes::sleep(0.1);
    }
    return 0;
}

sub stop {
    my $self = shift;
    return unless $self->{started};
    my $pid = $self->pid;
    $self->httpd('-k', 'stop');
    if ($pid) {
        for (1 .. 100) {
            last unless kill 0, $pid;
            Time::HiRes::sleep(0.1);
        }
    }
    $self->{started} = 0;
}

1;
