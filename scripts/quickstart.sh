#!/bin/bash
# quickstart.sh [start|stop|restart]: build the modules and run a demo SCEP
# server on http://127.0.0.1:8080/scep (PORT=... to change the port).
#
#   start (default)  install missing packages (as root, .ci/install), build
#                    (./autogen.sh, ./configure, make), make a demo PKI in
#                    demo/pki, write demo/httpd.conf and start the system
#                    httpd on it, stopping an earlier demo server first
#   stop             stop the demo server
#   restart          stop, then start
#
# Everything lives in demo/ (gitignored): the PKI, httpd.conf, logs/ and a
# build log.

set -euo pipefail

top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"

demo=$top/demo
port=${PORT:-8080}
conf=$demo/httpd.conf
action=${1:-start}

say() {
    echo "quickstart: $*"
}

die() {
    echo "quickstart: $*" >&2
    exit 1
}

find_httpd() {
    local apxs
    apxs=$(command -v apxs || command -v apxs2 || true)
    if [ -n "$apxs" ]; then
        echo "$("$apxs" -q SBINDIR)/$("$apxs" -q TARGET)"
    else
        echo /usr/sbin/apache2
    fi
}

stop_demo() {
    local pidfile=$demo/logs/httpd.pid pid
    [ -f "$pidfile" ] || return 0
    pid=$(cat "$pidfile" 2>/dev/null || true)
    if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then
        say "stopping the demo server (pid $pid)"
        "$(find_httpd)" -f "$conf" -k stop 2>/dev/null || kill "$pid" 2>/dev/null || true
        for _ in $(seq 1 50); do
            kill -0 "$pid" 2>/dev/null || break
            sleep 0.1
        done
        kill -0 "$pid" 2>/dev/null && die "pid $pid does not stop"
    fi
    rm -f "$pidfile"
}

case "$action" in
stop)    stop_demo; exit 0 ;;
restart) stop_demo ;;
start)   ;;
*)       die "usage: $0 [start|stop|restart]" ;;
esac

mkdir -p "$demo/logs"
buildlog=$demo/build.log

# ------------------------------------------------------------- packages
need_deps=no
for c in apxs autoreconf libtoolize pkg-config make gcc openssl curl; do
    command -v "$c" >/dev/null 2>&1 || need_deps=yes
done
pkg-config --exists openssl apr-1 apr-util-1 2>/dev/null || need_deps=yes
if [ "$need_deps" = yes ]; then
    [ "$(id -u)" -eq 0 ] || die "build dependencies missing: run 'sudo .ci/install' first"
    say "installing missing packages (.ci/install)"
    bash .ci/install >"$buildlog" 2>&1 || { cat "$buildlog"; die ".ci/install failed"; }
fi

# ---------------------------------------------------------------- build
say "building the modules (log: demo/build.log)"
{
    [ -x configure ] || ./autogen.sh
    [ -f Makefile ] && [ -f config.status ] || ./configure
    make -j"$(nproc 2>/dev/null || echo 2)"
} >>"$buildlog" 2>&1 || { tail -40 "$buildlog"; die "build failed, see demo/build.log"; }

for m in mod_ca mod_ca_simple mod_scep; do
    [ -f ".libs/$m.so" ] || die ".libs/$m.so was not built (see demo/build.log)"
done

# ------------------------------------------------------------------ PKI
if [ ! -f "$demo/pki/ca.pem" ]; then
    say "making a demo PKI in demo/pki"
fi
scripts/make-pki.sh "$demo/pki"

# --------------------------------------------------------------- config
httpd=$(find_httpd)
[ -x "$httpd" ] || die "httpd not found ($httpd)"
libexec=$(apxs -q LIBEXECDIR 2>/dev/null || echo /usr/lib/apache2/modules)
builtin=$("$httpd" -l 2>/dev/null || true)

# load a system module unless it is compiled in
sysmod() {
    local name=$1
    case "$builtin" in
    *"mod_$name.c"*) ;;
    *) echo "LoadModule ${name}_module $libexec/mod_$name.so" ;;
    esac
}

sysmods=$(for m in mpm_event unixd authz_core log_config; do sysmod "$m"; done)

user_group=""
if [ "$(id -u)" -eq 0 ]; then
    user_group="User www-data
Group www-data"
fi

mkdir -p "$demo/htdocs"
cat >"$conf" <<EOF
# Demo SCEP server, written by scripts/quickstart.sh: do not edit, it is
# rewritten on every start.
ServerRoot "$demo"
ServerName 127.0.0.1
Listen 127.0.0.1:$port
PidFile logs/httpd.pid
DefaultRuntimeDir logs
ErrorLog logs/error_log
LogLevel warn
DocumentRoot "$demo/htdocs"
$user_group

$sysmods
TransferLog logs/access_log

# no .htaccess lookups in every directory from / down on every request
<Directory />
    AllowOverride None
</Directory>

# the hook core first, then the backend and the frontend
LoadModule ca_module "$top/.libs/mod_ca.so"
LoadModule ca_simple_module "$top/.libs/mod_ca_simple.so"
LoadModule scep_module "$top/.libs/mod_scep.so"

<Location /scep>
    SetHandler scep
    ScepRACertificate "$demo/pki/ra.pem"
    ScepRAKey "$demo/pki/ra.key"
    ScepSubjectRequest *
    ScepSubjectAltNameRequest *
    CASimpleCertificate "$demo/pki/ca.pem"
    CASimpleKey "$demo/pki/ca.key"
    CASimpleTime on
    CASimpleSerialRandom on
    CASimpleDays 365
</Location>
EOF

# ---------------------------------------------------------------- start
stop_demo
out=$("$httpd" -f "$conf" -t 2>&1) || { echo "$out" >&2; die "demo/httpd.conf does not pass 'apache2 -t'"; }
say "starting $httpd on 127.0.0.1:$port (config: demo/httpd.conf)"
"$httpd" -f "$conf" -k start || { tail -20 "$demo/logs/error_log" >&2; die "httpd did not start"; }

url=http://127.0.0.1:$port/scep
up=no
for _ in $(seq 1 50); do
    if curl -fsS -o /dev/null "$url?operation=GetCACaps" 2>/dev/null; then
        up=yes
        break
    fi
    sleep 0.2
done
if [ "$up" = no ]; then
    tail -20 "$demo/logs/error_log" >&2
    die "the server does not answer GetCACaps on $url"
fi

mkdir -p "$demo/client"
cat <<EOF
quickstart: SCEP server up at $url (log: demo/logs/error_log)

Enroll (scepclient creates the key; remove demo/client to start over):
  scepclient -server-url $url -private-key demo/client/client.key \\
      -certificate demo/client/client.pem -cn demo-device -challenge any
Verify:
  openssl verify -CAfile demo/pki/ca.pem demo/client/client.pem
  openssl x509 -in demo/client/client.pem -noout -subject -issuer -dates
Capabilities:
  curl '$url?operation=GetCACaps'
Stop:
  scripts/quickstart.sh stop
EOF
