package LdapTest;

# A throwaway OpenLDAP server for mod_ca_ldap's tests, and helpers to look
# into it.
#
#   my $ldap = LdapTest->new;       # port from t/conf/ca_ldap.last.conf
#   $ldap->start or die;            # fresh database from t/ldap/base.ldif
#   my @der = $ldap->attr_values('uid=device1,ou=devices,dc=example,dc=org',
#                                'userCertificate;binary');
#   $ldap->stop; $ldap->start;      # a restart keeps the data
#
# slapd (Debian package slapd) runs in the foreground as a child of the
# test, from a slapd.conf made from t/ldap/slapd.conf.tmpl, with a back-mdb
# database in a scratch directory, listening on 127.0.0.1 only. It is
# stopped when the test exits. Data goes in and out with the ldap-utils
# programs (ldapadd, ldapsearch, ldapmodify), as the rootdn.
#
# The port is fixed by the httpd configuration (Define CA_LDAP_TEST_PORT in
# t/conf/ca_ldap.last.conf.in: the test server's port with a 1 in front),
# since the server must know it before the test runs; requirements() says
# why the tests cannot run (no slapd, the port is taken, ...).

use strict;
use warnings FATAL => 'all';

use Apache::Test ();
use File::Spec::Functions qw(catfile catdir);
use IO::Socket::INET ();
use MIME::Base64 ();
use POSIX ();
use Time::HiRes ();
use ScepTest qw(top_dir scratch_dir run_cmd slurp spit have_program);
use ScepTest::Httpd ();

use constant ROOT_DN => 'cn=admin,dc=example,dc=org';
use constant ROOT_PW => 'root-Secret-Zq00';

# the strings the error log must never hold: every password in the test
# directory (t/ldap/base.ldif, t/ldap/bind.pw)
use constant SECRETS => qw(
    scep-bind-Secret-7f3a root-Secret-Zq00
    chal-device1-Zq81 chal-device2-Zq82 chal-device3-Zq83
    chal-restart1-Zq84 chal-scepclient1-Zq85
    chal-mismatch1-Zq87 chal-dup1-Zq88 chal-nostore1-Zq89
    chal-geraet1-Zq92
    bindpw-bind1-Zq90 bindpw-bind2-Zq91 wrong-challenge-Zq99
);

# what the tests send when they mean to be wrong
use constant WRONG => 'wrong-challenge-Zq99';

my @running;                    # stopped at exit

END {
    my $status = $?;
    $_->stop for grep { $_->{pid} } @running;
    $? = $status;
}

sub fixtures_dir {
    return catdir(top_dir(), 't', 'ldap');
}

# CA_LDAP_TEST_PORT from the generated configuration
sub configured_port {
    my $conf = catfile(Apache::Test::vars('t_conf'), 'ca_ldap.last.conf');
    my $text = slurp($conf) // return undef;
    return $text =~ /^\s*Define\s+CA_LDAP_TEST_PORT\s+(\d+)/m ? $1 : undef;
}

sub port_free {
    my $port = shift;
    my $s = IO::Socket::INET->new(LocalAddr => '127.0.0.1',
                                  LocalPort => $port, Proto => 'tcp',
                                  ReuseAddr => 1, Listen => 1);
    return 0 unless $s;
    close $s;
    return 1;
}

# a module path for mod_ca_ldap.so, or undef
sub module_file {
    my $dir = ScepTest::modules_dir() // return undef;
    my $so = catfile($dir, 'mod_ca_ldap.so');
    return -e $so ? $so : undef;
}

# For plan(): a hash ref { reason => ok } as Apache::Test's need() takes.
sub requirements {
    my $port = configured_port();
    return {
        'mod_ca_ldap.so is built' => sub { module_file() },
        'slapd and ldap-utils are installed (.ci/install)' => sub {
            -x '/usr/sbin/slapd' && have_program('ldapsearch')
                && have_program('ldapadd') && have_program('ldapmodify')
        },
        't/conf/ca_ldap.last.conf defines CA_LDAP_TEST_PORT (1..65535)' =>
            sub { defined $port && $port > 0 && $port < 65536 },
        "port " . ($port // '?') . " on 127.0.0.1 must be free for slapd "
            . "(another test run on this machine?)" =>
            sub { defined $port && $port < 65536 && port_free($port) },
    };
}

sub new {
    my($class, %args) = @_;
    my $self = bless {
        port => $args{port} // configured_port(),
        dir  => $args{dir} // scratch_dir(),
        pid  => undef,
    }, $class;
    $self->{url} = "ldap://127.0.0.1:$self->{port}/";
    # ldaps:// on any free port: only configurations made by the tests
    # themselves use it
    $self->{tls_port} = ScepTest::Httpd::free_port();
    $self->{ldaps_url} = "ldaps://127.0.0.1:$self->{tls_port}/";
    return $self;
}

sub ldaps_url { $_[0]->{ldaps_url} }

# A key and certificate for the server (127.0.0.1, localhost) from the
# test CA, so that clients trusting t/pki/ca.pem can verify it.
sub make_server_cert {
    my $self = shift;
    my $dir = $self->{dir};
    spit("$dir/server.ext", "subjectAltName=IP:127.0.0.1,DNS:localhost\n"
                            . "extendedKeyUsage=serverAuth\n");
    my @steps = (
        [ 'openssl', 'req', '-new', '-newkey', 'rsa:2048', '-nodes',
          '-keyout', "$dir/server.key", '-subj', '/CN=127.0.0.1',
          '-out', "$dir/server.csr" ],
        [ 'openssl', 'x509', '-req', '-in', "$dir/server.csr",
          '-CA', ScepTest::pki_file('ca.pem'),
          '-CAkey', ScepTest::pki_file('ca.key'),
          '-CAserial', "$dir/ca.srl", '-CAcreateserial',
          '-days', '7', '-extfile', "$dir/server.ext",
          '-out', "$dir/server.pem" ],
    );
    for my $cmd (@steps) {
        my $r = run_cmd(@$cmd);
        if ($r->{rc} != 0) {
            print STDERR "# $r->{cmd}: $r->{err}\n";
            return 0;
        }
    }
    return 1;
}

sub url  { $_[0]->{url} }
sub port { $_[0]->{port} }
sub dir  { $_[0]->{dir} }

# Start slapd. The first start makes the configuration and database and
# loads t/ldap/base.ldif; later ones reuse them. Returns 1 when it answers.
sub start {
    my $self = shift;
    my $dir = $self->{dir};

    return 1 if $self->{pid};
    my $first = !-d "$dir/db";
    if ($first) {
        mkdir "$dir/db" or die "mkdir $dir/db: $!";
        my $tmpl = slurp(catfile(fixtures_dir(), 'slapd.conf.tmpl'))
            // die "cannot read t/ldap/slapd.conf.tmpl";
        my $fix = fixtures_dir();
        $tmpl =~ s/\@LDAP_FIXTURES\@/$fix/g;
        $tmpl =~ s/\@LDAP_RUN\@/$dir/g;
        $tmpl =~ s/\@LDAP_ROOT_PW\@/${\ ROOT_PW}/g;
        spit("$dir/slapd.conf", $tmpl);
        $self->make_server_cert or return 0;
    }

    my $pid = fork;
    die "fork: $!" unless defined $pid;
    if ($pid == 0) {
        open STDIN, '<', '/dev/null';
        open STDOUT, '>>', "$dir/slapd.log";
        open STDERR, '>&', \*STDOUT;
        # -d: stay in the foreground, log connections and operations
        { no warnings 'exec';
          exec '/usr/sbin/slapd', '-f', "$dir/slapd.conf",
               '-h', "$self->{url} $self->{ldaps_url}", '-d', 'stats'; }
        POSIX::_exit(127);
    }
    $self->{pid} = $pid;
    push @running, $self unless grep { $_ == $self } @running;

    my $up = 0;
    for (1 .. 100) {
        if (waitpid($pid, POSIX::WNOHANG()) == $pid) {
            $self->{pid} = undef;
            last;
        }
        if (ScepTest::Httpd::port_open($self->{port})) {
            $up = 1;
            last;
        }
        Time::HiRes::sleep(0.1);
    }
    unless ($up) {
        print STDERR "# slapd did not start:\n",
            map { "#   $_\n" } split /\n/, slurp("$dir/slapd.log") // '';
        $self->stop;
        return 0;
    }
    if ($first) {
        my $r = $self->ldap('ldapadd', { stdin =>
            slurp(catfile(fixtures_dir(), 'base.ldif')) });
        if ($r->{rc} != 0) {
            print STDERR "# ldapadd of t/ldap/base.ldif failed: $r->{err}\n";
            return 0;
        }
    }
    return 1;
}

# Stop slapd (SIGTERM, then SIGKILL after 10 seconds), continuing it first
# when it was paused.
sub stop {
    my $self = shift;
    my $pid = $self->{pid} or return;
    kill 'CONT', $pid;
    kill 'TERM', $pid;
    for (1 .. 100) {
        return $self->{pid} = undef if waitpid($pid, POSIX::WNOHANG()) == $pid;
        Time::HiRes::sleep(0.1);
    }
    kill 'KILL', $pid;
    waitpid $pid, 0;
    $self->{pid} = undef;
}

sub slapd_log { ScepTest::slurp("$_[0]->{dir}/slapd.log") // '' }

# Freeze and thaw slapd: connections are accepted by the kernel but never
# answered, the case CALdapTimeout exists for.
sub pause  { my $p = $_[0]->{pid}; kill 'STOP', $p if $p; }
sub resume { my $p = $_[0]->{pid}; kill 'CONT', $p if $p; }

# Run an ldap-utils program as the rootdn against this server.
sub ldap {
    my($self, $prog, $opts, @args) = @_;
    return run_cmd({ %{ $opts // {} }, timeout => 30 }, $prog, '-x',
                   '-H', $self->{url}, '-D', ROOT_DN, '-w', ROOT_PW, @args);
}

# Entries as hashes { dn => ..., lc(attr) => [values] }, binary values
# decoded. search(BASE, FILTER, ATTR...) searches the subtree.
sub search {
    my($self, $base, $filter, @attrs) = @_;
    return $self->_search('-b', $base, '-s', 'sub', $filter, @attrs);
}

sub _search {
    my($self, @args) = @_;
    my $r = $self->ldap('ldapsearch', {}, '-LLL', '-o', 'ldif-wrap=no',
                        @args);
    return () if $r->{rc} != 0;
    my @entries;
    for my $block (split /\n\n+/, $r->{out}) {
        my %e;
        for my $line (split /\n/, $block) {
            next if $line =~ /^#/;
            my($attr, $b64, $val) = $line =~ /^([^:]+):(:?) ?(.*)$/ or next;
            $val = MIME::Base64::decode_base64($val) if $b64;
            if ($attr eq 'dn') {
                $e{dn} = $val;
            }
            else {
                push @{ $e{lc $attr} }, $val;
            }
        }
        push @entries, \%e if $e{dn};
    }
    return @entries;
}

# The values of one attribute of one entry (the attribute as ldapsearch
# names it, e.g. "userCertificate;binary")
sub attr_values {
    my($self, $dn, $attr) = @_;
    my($e) = $self->_search('-b', $dn, '-s', 'base', '(objectClass=*)',
                            $attr);
    return () unless $e;
    return @{ $e->{lc $attr} // [] };
}

sub modify {
    my($self, $ldif) = @_;
    return $self->ldap('ldapmodify', { stdin => $ldif });
}

# The secrets of the test directory found in a text (the error log)
sub secrets_in {
    my($class, $text) = @_;
    return grep { index($text, $_) >= 0 } SECRETS;
}


# ---------------------------------------------------------------- httpd

sub error_log_file {
    return catfile(Apache::Test::vars('t_logs'), 'error_log');
}

# error_log_mark(): where the log ends now; error_log_since(MARK): what was
# written after it
sub error_log_mark {
    return -s error_log_file() // 0;
}

sub error_log_since {
    my $mark = shift // 0;
    my $text = slurp(error_log_file()) // '';
    return length $text > $mark ? substr($text, $mark) : '';
}

# enrol(CLIENT, PATH_OR_URL, CN, CHALLENGE): a PKCSReq for /CN=CN with the
# challenge password (none when undef) POSTed to PATH; returns a hash ref
# { code, rep (ScepClient reply), req, log (what the error log got) }
sub enrol {
    my($c, $path, $cn, $challenge, %o) = @_;
    my $mark = error_log_mark();
    my $req = $c->request(subject => "/CN=$cn/O=mod_ca_ldap tests",
                          defined $challenge ? (challenge => $challenge)
                                             : ());
    my $res = $c->post($path, $req);
    my $rep = $c->reply($res, $req);
    return {
        code => $res->code,
        rep  => $rep,
        req  => $req,
        log  => error_log_since($mark),
    };
}

# DER of the first certificate of a PEM file
sub pem_file_der {
    my $file = shift;
    return undef unless $file && -s $file;
    my $r = run_cmd('openssl', 'x509', '-in', $file, '-outform', 'DER');
    return $r->{rc} == 0 ? $r->{out} : undef;
}


# ---------------------------------------------------------------- own httpd

# Another httpd, next to the one Apache::Test runs: same binary (or
# SCEP_HTTPD_WRAPPER), same modules, a configuration of our own.
#
#   my $h = LdapTest::Httpd->new(body => $text);  # conf after the modules
#   my $r = $h->configtest;                         # run_cmd result of -t
#   $h->start or die; ... $h->url('/scep-ldap') ...; $h->stop;

package LdapTest::Httpd;

use parent -norequire, 'ScepTest::Httpd';
use ScepTest::Httpd ();

package LdapTest;

1;
