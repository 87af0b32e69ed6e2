# Canary: the modules under test are built and loaded. Fails (rather than
# skips) when one is missing, so that a broken build cannot make the rest
# of the suite skip itself into a green run.

use strict;
use warnings FATAL => 'all';

use Apache::Test;
use Apache::TestUtil;
use ScepTest qw(modules_dir);

my @modules = qw(ca ca_simple scep ca_disk ca_ldap ca_engine);

plan tests => scalar @modules;

for my $m (@modules) {
    my $ok = Apache::Test::need_module("mod_$m.c");
    ok $ok;
    t_debug("mod_$m.so not found in " . (modules_dir() // '?')) unless $ok;
}
