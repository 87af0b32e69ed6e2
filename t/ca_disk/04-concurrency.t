# Many enrolments at once.  On /scep-store every one is signed and stored,
# with distinct serials and only complete files on disk.  On /scep-disk
# every one is saved, and the same transaction sent by many processes at
# once is saved exactly once.

use strict;
use warnings FATAL => 'all';

use Apache::Test;
use Apache::TestUtil;
use File::Spec::Functions qw(catfile);
use ScepTest qw(:all);
use CaDiskTest qw(:all);

my $N = 24;         # parallel enrolments on /scep-store
my $D = 20;         # parallel enrolments on /scep-disk
my $SAME = 10;      # processes sending the same transaction

plan tests => 15,
    need need_module('scep', 'ca_simple'),
         { 'mod_ca_disk not built or locations not configured' =>
               \&have_ca_disk };

my $dir = scratch_dir();

# ---- /scep-store: N enrolments at the same moment
my(@c, @f);
for my $i (1 .. $N) {
    push @c, new_client(dir => $dir, name => "conc$i");
    push @f, build_request($c[-1], subject => $c[-1]{subject});
}
my($secs, @r) = run_parallel(\@c, \@f, '/scep-store');
t_debug(sprintf "%d parallel enrolments on /scep-store: %.2f s, %.1f/s",
        $N, $secs, $N / ($secs || 1));

my @ok = grep { ($_->{pkiStatus} // '') eq 'SUCCESS' && $_->{cert} } @r;
ok t_cmp(scalar @ok, $N, "all $N parallel enrolments SUCCESS");
my %serials = map { (cert_serial($_->{cert}) // 'none') => 1 } @ok;
ok t_cmp(scalar keys %serials, $N, 'all serials distinct');

my $stored = 0;
for my $i (0 .. $#c) {
    my $by_tid = catfile(disk_dir('store'), 'by-transaction',
                         tid_hash($c[$i]{tid}) . '.pem');
    $stored++ if $r[$i]{cert} && -f $by_tid
        && fingerprint_pem_file($by_tid) eq fingerprint_pem_file($r[$i]{cert});
}
ok t_cmp($stored, $N, 'each stored by its transaction');
my $found = 0;
for my $s (keys %serials) {
    my @g = glob(catfile(disk_dir('store'), 'by-serial', '*', "$s.pem"));
    $found++ if @g == 1;
}
ok t_cmp($found, $N, 'each stored by its serial');

my $check = check_store(disk_dir('store'));
t_debug('bad: ' . join(' ', @{ $check->{bad} })) if @{ $check->{bad} };
ok t_cmp(scalar @{ $check->{bad} }, 0, 'every file in the store parses');
ok scalar @{ $check->{ok} } >= 2 * $N;
ok t_cmp(scalar @{ $check->{tmp} }, 0, 'no temporary file left behind');

# ---- /scep-disk: D different transactions at once, all saved
my(@dc, @df);
for my $i (1 .. $D) {
    push @dc, new_client(dir => $dir, name => "dconc$i");
    push @df, build_request($dc[-1], subject => $dc[-1]{subject});
}
($secs, @r) = run_parallel(\@dc, \@df, '/scep-disk');
t_debug(sprintf "%d parallel PKCSReq on /scep-disk: %.2f s", $D, $secs);
ok t_cmp(scalar(grep { ($_->{pkiStatus} // '') eq 'PENDING' } @r), $D,
         "all $D parallel requests PENDING");
ok t_cmp(scalar(grep { -f request_file($_->{tid}) } @dc), $D,
         'each saved under its transaction');

# ---- the same transaction from many processes at once: saved once
my $s = new_client(dir => $dir, name => 'same');
my @sc = ($s) x $SAME;
my @sf = map { build_request($s, subject => $s->{subject}) } 1 .. $SAME;
($secs, @r) = run_parallel(\@sc, \@sf, '/scep-disk');
ok t_cmp(scalar(grep { ($_->{pkiStatus} // '') eq 'PENDING' } @r), $SAME,
         "the same transaction $SAME times at once: all PENDING");
my $h = tid_hash($s->{tid});
ok t_cmp(scalar(grep { index($_, $h) >= 0 } pending_files()), 1,
         'exactly one request saved');
$check = check_store(disk_dir('requests'));
ok t_cmp(scalar @{ $check->{tmp} }, 0, 'no temporary file left behind');
ok t_cmp(scalar @{ $check->{bad} }, 0, 'every request file parses');

# ---- approve them all in one run
my $a = approve(map { request_file($_->{tid}) } @dc, $s);
t_debug("$a->{cmd}\n$a->{out}$a->{err}");
ok t_cmp($a->{rc}, 0, 'ca-disk-sign signs them in one run');
my @lines = $a->{out} =~ /issued serial/g;
ok t_cmp(scalar @lines, $D + 1, 'one line per request');
