# mod_ca_ldap's configuration checks, with httpd -t on configurations made
# here: what cannot work refuses to start with the reason and the place;
# what inherits its missing pieces from an enclosing section (server,
# virtual host, enclosing <Location>) starts. No directory is needed: the
# checks never contact it. Secrets never appear in the messages.

use strict;
use warnings FATAL => 'all';

use Apache::Test;
use Apache::TestUtil;
use File::Spec::Functions qw(catfile);
use ScepTest qw(top_dir spit);
use LdapTest;

my $so = LdapTest::module_file();
my $pwfile = catfile(top_dir(), 't', 'ldap', 'bind.pw');

my $url  = 'CALdapURL ldap://127.0.0.1:9/';
my $bind = "CALdapBindDN cn=scep,ou=services,dc=example,dc=org\n"
         . "CALdapBindPasswordFile \"$pwfile\"";
my $base = 'CALdapBase dc=example,dc=org';
my $filt = 'CALdapFilter "(uid=%{env:SCEP_SUBJECT_CN})"';
my $chal = 'CALdapChallengeAttribute scepChallengePassword';

sub loc {
    my($path, @lines) = @_;
    return join "\n", "<Location $path>", (map { "    $_" } @lines),
        "</Location>", '';
}

# [ label, configuration, undef (must pass) or a regex of the error ]
my @cases = (
    [ 'complete', loc('/a', $url, $bind, $base, $filt, $chal), undef ],
    [ 'bind mode, anonymous',
      loc('/a', $url, $base, $filt, 'CALdapChallengeBind on'), undef ],
    [ 'server list, options',
      loc('/a', 'CALdapURL ldap://127.0.0.1:9/ "ldaps://[::1]:636/"',
          'CALdapTimeout 30', 'CALdapScope one', $base, $filt, $chal,
          'CALdapSubjectMatch cn', 'CALdapStoreMode replace',
          'CALdapCertificateAttribute none',
          'CALdapPKCS7Attribute userSMIMECertificate'), undef ],
    [ 'inherited from an enclosing Location',
      loc('/a', $url, $bind, $base) . loc('/a/b', $filt, $chal), undef ],
    [ 'inherited from the server',
      "$url\n$bind\n$base\n" . loc('/a', $filt, $chal), undef ],
    [ 'inherited in a virtual host',
      "<VirtualHost 127.0.0.1:8>\n$url\n$base\n"
      . loc('/a', $filt, 'CALdapChallengeBind on') . "</VirtualHost>\n",
      undef ],
    [ 'another challenge method replaces the inherited one',
      loc('/a', $url, $base, $filt, $chal)
      . loc('/a/b', 'CALdapChallengeBind on'), undef ],
    [ 'no base', loc('/a', $url, $filt, $chal),
      qr/mod_ca_ldap configuration at \S+:\d+: CALdapFilter is set without CALdapBase/ ],
    [ 'no URL', loc('/a', $base, $filt, $chal),
      qr/CALdapFilter is set without CALdapURL/ ],
    [ 'no challenge method', loc('/a', $url, $base, $filt),
      qr/CALdapFilter needs CALdapChallengeAttribute or CALdapChallengeBind on/ ],
    [ 'both challenge methods',
      loc('/a', $url, $base, $filt, $chal, 'CALdapChallengeBind on'),
      qr/CALdapChallengeAttribute and CALdapChallengeBind on exclude each other/ ],
    [ 'bind DN without password',
      loc('/a', $url, 'CALdapBindDN cn=x,dc=example,dc=org', $base, $filt,
          $chal),
      qr/CALdapBindDN is set without CALdapBindPassword/ ],
    [ 'password without bind DN',
      loc('/a', $url, 'CALdapBindPassword cfgsecret-Zq77', $base, $filt,
          $chal),
      qr/a bind password is set without CALdapBindDN/ ],
    [ 'StartTLS on ldaps',
      loc('/a', 'CALdapURL ldaps://127.0.0.1:9/', 'CALdapStartTLS on',
          $base, $filt, $chal),
      qr/CALdapStartTLS on cannot be used with ldaps/ ],
    [ 'not an LDAP URL', loc('/a', 'CALdapURL http://127.0.0.1/'),
      qr/CALdapURL: 'http:\/\/127.0.0.1\/' is not an LDAP URL|the scheme must be/ ],
    [ 'URL with a DN', loc('/a', 'CALdapURL ldap://127.0.0.1/dc=x'),
      qr/give the server only/ ],
    [ 'bad DN', loc('/a', 'CALdapBase not-a-dn'),
      qr/CALdapBase: 'not-a-dn' is not a distinguished name/ ],
    [ 'unbalanced filter',
      loc('/a', 'CALdapFilter "(&(uid=%{env:SCEP_SUBJECT_CN})"'),
      qr/is not an LDAP filter/ ],
    [ 'filter without parentheses',
      loc('/a', 'CALdapFilter "uid=%{env:SCEP_SUBJECT_CN}"'),
      qr/is not an LDAP filter/ ],
    [ 'bad expression',
      loc('/a', 'CALdapFilter "(uid=%{nosuchfunction:x})"'),
      qr/CALdapFilter: cannot parse '%\{nosuchfunction:x\}'/ ],
    [ 'unterminated expression',
      loc('/a', 'CALdapFilter "(uid=%{env:X)"'),
      qr/unterminated %\{/ ],
    [ 'bad scope', loc('/a', 'CALdapScope subtree'),
      qr/CALdapScope must be base, one or sub/ ],
    [ 'bad timeout', loc('/a', 'CALdapTimeout 0'),
      qr/CALdapTimeout must be a number of seconds from 1 to 300/ ],
    [ 'bad attribute', loc('/a', 'CALdapCertificateAttribute "user cert"'),
      qr/CALdapCertificateAttribute: 'user cert' is not an attribute description \(a name or OID, then any ;options\), nor none/ ],
    [ 'bad subject attribute', loc('/a', 'CALdapSubjectMatch "c n"'),
      qr/CALdapSubjectMatch: 'c n' is not an attribute description/ ],
    [ 'bad PKCS#7 attribute', loc('/a', 'CALdapPKCS7Attribute 1x'),
      qr/CALdapPKCS7Attribute: '1x' is not an attribute description/ ],
    [ 'no challenge attribute', loc('/a', 'CALdapChallengeAttribute none'),
      qr/CALdapChallengeAttribute cannot be none: leave it out/ ],
    [ 'bad store mode', loc('/a', 'CALdapStoreMode append'),
      qr/CALdapStoreMode must be add or replace/ ],
    [ 'missing password file',
      loc('/a', 'CALdapBindPasswordFile /nonexistent/bind.pw'),
      qr/CALdapBindPasswordFile \/nonexistent\/bind.pw: cannot open/ ],
    [ 'two passwords',
      loc('/a', 'CALdapBindPassword cfgsecret-Zq77',
          "CALdapBindPasswordFile \"$pwfile\""),
      qr/the bind password is already set in this section/ ],
);

plan tests => 2 * @cases + 2,
    need { 'mod_ca_ldap.so is built' => sub { $so } },
         need_module('scep');

my $all = '';
for my $case (@cases) {
    my($label, $body, $want) = @$case;
    my $h = LdapTest::Httpd->new(
        body => qq(LoadModule ca_ldap_module "$so"\n) . $body);
    my $r = $h->configtest;
    t_debug("$label: exit $r->{rc}: $r->{err}");
    $all .= $r->{err} . $r->{out};
    if (defined $want) {
        ok t_cmp($r->{rc} != 0 ? 1 : 0, 1, "$label: httpd -t fails");
        ok t_cmp($r->{err}, $want, "$label: says why");
    }
    else {
        ok t_cmp($r->{rc}, 0, "$label: httpd -t passes");
        ok t_cmp($r->{err}, qr/Syntax OK/, "$label: Syntax OK");
    }
}

ok t_cmp(index($all, 'cfgsecret-Zq77'), -1, 'no password in the messages');
ok t_cmp(index($all, 'scep-bind-Secret-7f3a'), -1,
         'no password file contents in the messages');
