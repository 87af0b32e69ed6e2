# bench/lib.sh: shell helpers shared by bench/run.sh, bench/soak.sh and
# bench/disk.sh.
# Sourced, not run. Expects $top (the source tree) and $work (a scratch
# directory of the run) to be set, and set -eu.

say() {
    echo "${prog:-bench}: $*" >&2
}

die() {
    echo "${prog:-bench}: $*" >&2
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

# A free TCP port on 127.0.0.1 from $1 up.
free_port() {
    local p=$1
    while (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; do
        p=$((p + 1))
    done
    echo "$p"
}

# build_all [TARGET...]: the modules and the load generator (each only
# when needed); TARGETs are more of the tree's modules (mod_ca_disk.la).
build_all() {
    (
        cd "$top"
        [ -x configure ] || ./autogen.sh
        [ -f Makefile ] && [ -f config.status ] || ./configure
        # only what is measured: the rest of the tree may be mid-edit
        if [ -n "${MODULES:-}" ]; then
            make libcautil.la >/dev/null
        else
            make -j"$(nproc)" libcautil.la mod_ca.la mod_ca_simple.la \
                mod_scep.la "$@" >/dev/null
        fi
    ) || die "building the modules failed"
    make -C "$top/bench" >/dev/null || die "building bench/scep-load failed"
    load=$top/bench/scep-load
}

# snapshot_modules DIR [MODULE...]: copies of the built modules (the
# suite's three and the MODULEs named, e.g. mod_ca_disk), so that a
# rebuild of the tree during a run cannot change what is measured; from
# $MODULES when set, else from the tree's .libs.
snapshot_modules() {
    local dir=$1 from=${MODULES:-$top/.libs} m
    shift
    mkdir -p "$dir"
    for m in mod_ca mod_ca_simple mod_scep "$@"; do
        [ -f "$from/$m.so" ] || die "$from/$m.so is not built"
        cp "$from/$m.so" "$dir/$m.so"
    done
}

# write_httpd_conf DIR PORT PKI MODDIR [EXTRA [MODULE...]]: an event-MPM
# server with the suite at /scep (EXTRA: more lines for its <Location>) and
# the static copy of GetCACert at /static/; the MODULEs (mod_ca_disk ...)
# are loaded from MODDIR after the suite's three.
write_httpd_conf() {
    local dir=$1 port=$2 pki=$3 moddir=$4 extra=${5:-}
    local httpd libexec builtin m sysmods="" user_group="" ourmods=""
    shift 4
    [ $# -eq 0 ] || shift
    for m in "$@"; do
        ourmods="$ourmods
LoadModule ${m#mod_}_module \"$moddir/$m.so\""
    done
    httpd=$(find_httpd)
    libexec=$(apxs -q LIBEXECDIR 2>/dev/null || echo /usr/lib/apache2/modules)
    builtin=$("$httpd" -l 2>/dev/null || true)
    for m in mpm_event unixd authz_core log_config mime; do
        case "$builtin" in
        *"mod_$m.c"*) ;;
        *) sysmods="$sysmods
LoadModule ${m}_module $libexec/mod_$m.so" ;;
        esac
    done
    if [ "$(id -u)" -eq 0 ]; then
        user_group="User www-data
Group www-data"
    fi
    mkdir -p "$dir/logs" "$dir/htdocs/static"
    cat >"$dir/httpd.conf" <<EOF
# written by bench/: rewritten on every run
ServerRoot "$dir"
ServerName 127.0.0.1
Listen 127.0.0.1:$port
PidFile logs/httpd.pid
DefaultRuntimeDir logs
ErrorLog logs/error_log
LogLevel ${BENCH_LOGLEVEL:-warn}
DocumentRoot "$dir/htdocs"
$user_group
$sysmods
TransferLog logs/access_log
TypesConfig /dev/null

# a fixed set of children, so that none is started or stopped mid-run and
# their memory can be followed: ${BENCH_SERVERS:-2} x ${BENCH_THREADS:-32} threads
StartServers ${BENCH_SERVERS:-2}
ServerLimit ${BENCH_SERVERS:-2}
ThreadsPerChild ${BENCH_THREADS:-32}
ThreadLimit ${BENCH_THREADS:-32}
MaxRequestWorkers $(( ${BENCH_SERVERS:-2} * ${BENCH_THREADS:-32} ))
MinSpareThreads 1
MaxSpareThreads $(( ${BENCH_SERVERS:-2} * ${BENCH_THREADS:-32} ))
MaxConnectionsPerChild 0
KeepAlive On
MaxKeepAliveRequests 0
KeepAliveTimeout 30

# no .htaccess lookups (8 failed opens per request otherwise), as in every
# distribution's default configuration
<Directory />
    AllowOverride None
</Directory>

LoadModule ca_module "$moddir/mod_ca.so"
LoadModule ca_simple_module "$moddir/mod_ca_simple.so"
LoadModule scep_module "$moddir/mod_scep.so"$ourmods

<Location /scep>
    SetHandler scep
    ScepRACertificate "$pki/ra.pem"
    ScepRAKey "$pki/ra.key"
    ScepSubjectRequest *
    ScepSubjectAltNameRequest *
    CASimpleCertificate "$pki/ca.pem"
    CASimpleKey "$pki/ca.key"
    CASimpleTime on
    CASimpleSerialRandom on
    CASimpleDays 365
$extra
</Location>

<Location /static/>
    ForceType application/x-x509-ca-ra-cert
</Location>
EOF
}

httpd_pid() {
    cat "$1/logs/httpd.pid" 2>/dev/null || true
}

start_httpd() {
    local dir=$1 port=$2 httpd up=no
    httpd=$(find_httpd)
    rm -f "$dir/logs/error_log" "$dir/logs/access_log"
    "$httpd" -f "$dir/httpd.conf" -t >/dev/null 2>&1 \
        || { "$httpd" -f "$dir/httpd.conf" -t; die "httpd.conf does not pass -t"; }
    "$httpd" -f "$dir/httpd.conf" -k start \
        || { tail -20 "$dir/logs/error_log" >&2; die "httpd did not start"; }
    for _ in $(seq 1 100); do
        if curl -fsS -o /dev/null "http://127.0.0.1:$port/scep?operation=GetCACaps" 2>/dev/null; then
            up=yes
            break
        fi
        sleep 0.1
    done
    [ "$up" = yes ] || { tail -20 "$dir/logs/error_log" >&2; die "httpd does not answer on $port"; }
    # every child up (StartServers), so that the pid list is complete
    for _ in $(seq 1 50); do
        [ "$(httpd_children "$dir" | wc -w)" -ge "${BENCH_SERVERS:-2}" ] && break
        sleep 0.1
    done
}

stop_httpd() {
    local dir=$1 pid
    pid=$(httpd_pid "$dir")
    [ -n "$pid" ] || return 0
    if kill -0 "$pid" 2>/dev/null; then
        "$(find_httpd)" -f "$dir/httpd.conf" -k stop 2>/dev/null || kill "$pid" 2>/dev/null || true
        for _ in $(seq 1 100); do
            kill -0 "$pid" 2>/dev/null || break
            sleep 0.1
        done
    fi
    rm -f "$dir/logs/httpd.pid"
}

# pids of the httpd children (the parent only manages them)
httpd_children() {
    local pid
    pid=$(httpd_pid "$1")
    [ -n "$pid" ] || return 0
    ps -o pid= --ppid "$pid" | tr -s ' \n' ' '
}

# "SUM MAX" resident KiB of the children
children_rss() {
    local pids
    pids=$(httpd_children "$1")
    [ -n "$pids" ] || { echo "0 0"; return; }
    # shellcheck disable=SC2086
    ps -o rss= -p $(echo $pids | tr ' ' ',') \
        | awk '{s += $1; if ($1 > m) m = $1} END {print s, m}'
}

# Crashes and 5xx causes the error log knows about.
crash_lines() {
    grep -E 'AH0005[12]|AH00052|exit signal|Segmentation|Aborted|AddressSanitizer|runtime error' \
        "$1/logs/error_log" 2>/dev/null || true
}

# machine_info: key=value lines saying what is measured, for the record
machine_info() {
    echo "date=$(date -u '+%Y-%m-%d %H:%M:%S UTC')"
    echo "git=$(git -C "$top" rev-parse --short HEAD 2>/dev/null || echo none)$(git -C "$top" diff --quiet HEAD -- '*.c' '*.h' 2>/dev/null || echo '+local changes')"
    echo "nproc=$(nproc)"
    echo "cpu=$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -1)"
    echo "hypervisor=$(lscpu 2>/dev/null | sed -n 's/^Hypervisor vendor:[[:space:]]*//p')"
    echo "mem=$(free -g | awk '/^Mem:/ {print $2 " GiB"}')"
    echo "kernel=$(uname -r)"
    echo "openssl=$(openssl version)"
    echo "httpd=$("$(find_httpd)" -v | sed -n 's/^Server version: //p')"
    echo "loadavg_before=$(cut -d' ' -f1-3 /proc/loadavg)"
    [ -z "${MODULES:-}" ] || echo "modules=$MODULES"
}

# value KEY FILE: the value of a key=value line
value() {
    sed -n "s/^$1=//p" "$2" | tail -1
}

# Per-round figures: files $res/PREFIX.1 ... $res/PREFIX.$rounds of
# key=value lines (scep-load's output); $res and $rounds set by the caller.
median() {  # numbers on stdin -> median
    sort -g | awk '{v[NR] = $1} END {if (NR == 0) print "n/a"; else if (NR % 2) print v[(NR + 1) / 2]; else printf "%.2f\n", (v[NR / 2] + v[NR / 2 + 1]) / 2}'
}
col() {     # col KEY PREFIX: the key's value in every round's file
    local r
    for r in $(seq 1 "$rounds"); do
        value "$1" "$res/$2.$r"
    done
}
ratio_col() {   # ratio_col KEY1 PREFIX1 KEY2 PREFIX2: per-round ratios
    local r a b
    for r in $(seq 1 "$rounds"); do
        a=$(value "$1" "$res/$2.$r")
        b=$(value "$3" "$res/$4.$r")
        awk -v a="${a:-0}" -v b="${b:-0}" 'BEGIN {if (b > 0) printf "%.3f\n", a / b}'
    done
}
list() {    # lines on stdin -> one line, space separated
    tr '\n' ' ' | sed 's/ $//'
}
sum_col() { # sum_col KEY PREFIX: the sum over the rounds
    local r t=0 v
    for r in $(seq 1 "$rounds"); do
        v=$(value "$1" "$res/$2.$r")
        t=$((t + ${v:-0}))
    done
    echo "$t"
}
