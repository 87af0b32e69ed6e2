# GetCACaps (RFC 8894 3.5.2): a plain-text list of capability keywords,
# exact case, one per line. Apple sends an empty "message=", others may send
# anything there; the answer must not change.

use strict;
use warnings FATAL => 'all';

use Apache::Test;
use Apache::TestRequest;
use Apache::TestUtil;
use ScepTest qw(caps_list);

# keywords every location must advertise: what RFC 8894 makes mandatory
# (SCEPStandard implies AES, POSTPKIOperation and SHA-256; clients that do
# not know SCEPStandard need them spelt out)
my @required = qw(POSTPKIOperation SHA-256 AES SCEPStandard);

my @queries = ('', '&message=', '&message=anything');

plan tests => 2 * @queries * (3 + @required + 1) + 1,
    need_module('scep');

my %caps_of;

for my $loc (qw(/scep /scep-next)) {
    for my $q (@queries) {
        my $url = "$loc?operation=GetCACaps$q";
        my $res = GET $url;
        t_debug("GET $url -> " . $res->status_line);

        ok t_cmp($res->code, 200, "$url: status");
        ok t_cmp(scalar $res->header('Content-Type'), qr{^text/plain\b}i,
                 "$url: Content-Type");

        my @caps = caps_list($res->content);
        t_debug("caps: @caps");
        for my $kw (@required) {
            ok t_cmp((grep { $_ eq $kw } @caps) ? $kw : "no $kw", $kw,
                     "$url advertises $kw (exact case)");
        }

        my $next = grep { $_ eq 'GetNextCACert' } @caps;
        if ($loc eq '/scep-next') {
            ok t_cmp($next, 1, "$url advertises GetNextCACert");
        }
        else {
            ok t_cmp($next, 0, "$url does not advertise GetNextCACert");
        }

        # no keyword twice, nothing but keyword characters
        my %seen;
        my @bad = grep { $seen{$_}++ || !/^[A-Za-z0-9][A-Za-z0-9.\-]*$/ }
            @caps;
        ok t_cmp("@bad", '', "$url: no duplicate or malformed keyword");

        push @{ $caps_of{$loc} }, join ',', sort @caps;
    }
}

# the message= parameter does not change the answer
my %distinct = map { $_ => 1 } @{ $caps_of{'/scep'} };
ok t_cmp(scalar keys %distinct, 1,
         '/scep: same capabilities with and without message=');
