package ScepTest;

# Helpers shared by the .t files: run a command and capture its output,
# fingerprint certificates, list the certificates in a PKCS#7, find the
# test PKI and the server's URLs.
#
# Everything talks to real things: the openssl CLI, scepclient, the test
# server started by Apache::Test.

use strict;
use warnings FATAL => 'all';

use Apache::Test ();
use Apache::TestRequest ();
use File::Spec::Functions qw(catfile catdir);
use File::Temp ();
use POSIX ();

use Exporter 'import';
our @EXPORT_OK = qw(
    top_dir pki_dir pki_file modules_dir base_url scratch_dir
    run_cmd have_program slurp spit
    fingerprint fingerprint_pem_file p7_certs p7_fingerprints
    cert_subject cert_subject_cn cert_pubkey key_pubkey
    caps_list max_age
);
our %EXPORT_TAGS = (all => \@EXPORT_OK);

# ---------------------------------------------------------------- paths

sub vars {
    my $cfg = Apache::Test::config();
    return $cfg->{vars};
}

sub top_dir {
    return vars()->{scep_top_dir} || vars()->{top_dir};
}

sub pki_dir {
    return vars()->{scep_pki_dir} || catdir(top_dir(), 't', 'pki');
}

sub pki_file {
    my $name = shift;
    return catfile(pki_dir(), $name);
}

sub modules_dir {
    return vars()->{scep_modules_dir};
}

# "http://127.0.0.1:8529" + path, for clients other than Apache::TestRequest
sub base_url {
    my $path = shift // '';
    return 'http://' . Apache::TestRequest::hostport() . $path;
}

# A fresh directory for one test's files, removed at exit unless
# SCEP_TEST_KEEP is set (then its name is printed as a diagnostic).
sub scratch_dir {
    my $keep = $ENV{SCEP_TEST_KEEP} ? 1 : 0;
    my $dir = File::Temp::tempdir('scep-test-XXXXXX', TMPDIR => 1,
                                  CLEANUP => !$keep);
    print "# keeping $dir\n" if $keep;
    return $dir;
}

# ---------------------------------------------------------------- files

sub slurp {
    my $file = shift;
    open my $fh, '<:raw', $file or return undef;
    local $/;
    my $data = <$fh>;
    close $fh;
    return $data;
}

sub spit {
    my($file, $data) = @_;
    open my $fh, '>:raw', $file or die "cannot write $file: $!";
    print $fh $data;
    close $fh or die "cannot write $file: $!";
    return $file;
}

# ---------------------------------------------------------------- commands

sub have_program {
    my $name = shift;
    for my $dir (split /:/, $ENV{PATH} // '') {
        return catfile($dir, $name) if -x catfile($dir, $name);
    }
    return undef;
}

# run_cmd([\%opts,] @argv)
#   opts: stdin   => bytes fed to the command (default: /dev/null)
#         timeout => seconds after which the command is killed (coreutils
#                    timeout(1); exit status 124)
# Returns a hash ref { rc, out, err, signal, cmd }; rc is the exit status
# (128 + signal number when killed by a signal). Never dies on failure.
sub run_cmd {
    my %opt = ref $_[0] eq 'HASH' ? %{ shift() } : ();
    my @cmd = @_;
    unshift @cmd, 'timeout', '-k', '5', $opt{timeout} if $opt{timeout};

    my $out = File::Temp->new;
    my $err = File::Temp->new;
    my $in;
    if (defined $opt{stdin}) {
        $in = File::Temp->new;
        binmode $in;
        print $in $opt{stdin};
        close $in;
    }

    my $pid = fork;
    die "fork: $!" unless defined $pid;
    if ($pid == 0) {
        open STDIN, '<', (defined $in ? $in->filename : '/dev/null')
            or POSIX::_exit(126);
        open STDOUT, '>&', $out or POSIX::_exit(126);
        open STDERR, '>&', $err or POSIX::_exit(126);
        { no warnings "exec"; exec { $cmd[0] } @cmd; }
        print STDERR "exec $cmd[0]: $!\n";
        POSIX::_exit(127);
    }
    waitpid $pid, 0;
    my $status = $?;

    my %r = (
        cmd    => join(' ', @cmd),
        rc     => ($status & 127) ? 128 + ($status & 127) : $status >> 8,
        signal => $status & 127,
        out    => slurp($out->filename) // '',
        err    => slurp($err->filename) // '',
    );
    return \%r;
}

# ---------------------------------------------------------------- X.509

# SHA-256 fingerprint (upper-case hex, no colons) of a certificate given as
# PEM text or DER bytes
sub fingerprint {
    my $cert = shift;
    my $form = $cert =~ /-----BEGIN CERTIFICATE-----/ ? 'PEM' : 'DER';
    my $r = run_cmd({ stdin => $cert }, 'openssl', 'x509', '-inform', $form,
                    '-noout', '-fingerprint', '-sha256');
    return undef if $r->{rc} != 0;
    return $r->{out} =~ /Fingerprint=([0-9A-F:]+)/i
        ? uc(join '', split /:/, $1) : undef;
}

sub fingerprint_pem_file {
    my $file = shift;
    my $pem = slurp($file);
    die "cannot read $file" unless defined $pem;
    return fingerprint($pem);
}

# The certificates of a PKCS#7 SignedData (DER bytes) as a list of PEM
# strings, in the order openssl prints them. Returns () when the input
# does not parse.
sub p7_certs {
    my $der = shift;
    my $r = run_cmd({ stdin => $der }, 'openssl', 'pkcs7', '-inform', 'DER',
                    '-print_certs');
    return () if $r->{rc} != 0;
    return $r->{out} =~
        /(-----BEGIN CERTIFICATE-----.*?-----END CERTIFICATE-----\n?)/gs;
}

# The fingerprints of the certificates in a PKCS#7, sorted
sub p7_fingerprints {
    my $der = shift;
    return sort map { fingerprint($_) // 'unparsable' } p7_certs($der);
}

# Subject of a certificate file in RFC 2253 form ("CN=x,OU=y,O=z,C=US")
sub cert_subject {
    my $file = shift;
    my $r = run_cmd('openssl', 'x509', '-in', $file, '-noout', '-subject',
                    '-nameopt', 'RFC2253');
    return undef if $r->{rc} != 0;
    return $r->{out} =~ /^subject=\s*(.*?)\s*$/m ? $1 : undef;
}

sub cert_subject_cn {
    my $subject = cert_subject(shift) // return undef;
    return $subject =~ /(?:^|,)CN=((?:\\.|[^,])*)/ ? $1 : undef;
}

# The public key of a certificate or of a private key file, as PEM
sub cert_pubkey {
    my $file = shift;
    my $r = run_cmd('openssl', 'x509', '-in', $file, '-noout', '-pubkey');
    return $r->{rc} == 0 ? $r->{out} : undef;
}

sub key_pubkey {
    my $file = shift;
    my $r = run_cmd('openssl', 'pkey', '-in', $file, '-pubout');
    return $r->{rc} == 0 ? $r->{out} : undef;
}

# ---------------------------------------------------------------- HTTP

# GetCACaps keywords, one per line; CRLF and LF both allowed
sub caps_list {
    my $body = shift // '';
    return grep { length } map { s/\s+$//r } split /\r?\n/, $body;
}

# max-age from a response's Cache-Control, or undef
sub max_age {
    my $res = shift;
    my $cc = $res->header('Cache-Control') // return undef;
    return $cc =~ /(?:^|[,\s])max-age\s*=\s*"?(\d+)"?/i ? $1 : undef;
}

1;
