# shellcheck shell=bash
# lib.sh - sourced by bench/run.sh, bench/idle.sh and bench/profile.sh: ports, process
# bookkeeping, and starting capd, lighttpd and Apache the way the benchmark runs them.
#
# The caller sets ROOT (the source tree), BUILD (absolute), CAPD_SHM_PREFIX (exported) and
# creates the run folder it passes in. Every process started here goes into pids[]; stop_all
# ends them (TERM, then KILL after 5 s) and removes the shared-memory objects of the prefix.

pids=()
stop_all() {
    local p
    for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null; done
    for p in "${pids[@]}"; do
        for _ in $(seq 50); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
        kill -KILL "$p" 2>/dev/null
        wait "$p" 2>/dev/null
    done
    pids=()
    rm -f /dev/shm/"$CAPD_SHM_PREFIX"*
}

port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
free_port() {
    local p
    while :; do
        p=$((20000 + RANDOM % 40000))
        port_open "$p" || break
    done
    echo "$p"
}
wait_port() {
    for _ in $(seq 100); do port_open "$1" && return 0; sleep 0.1; done
    return 1
}
wait_ring() { # NAME: capd's ring appears (5 s at most)
    for _ in $(seq 50); do [ -e "/dev/shm/${CAPD_SHM_PREFIX}$1" ] && return 0; sleep 0.1; done
    return 1
}

# As root, Apache serves as www-data (it refuses to serve as root), so capd hands its ring to
# that group and the Apache system's responder runs as www-data too; tests/integration/
# test_apache.sh does the same.
CAPD_GROUP_ARGS=()
AS_SERVER_USER=()
SERVER_USER=""
if [ "$(id -u)" = 0 ] && id www-data >/dev/null 2>&1 && command -v setpriv >/dev/null; then
    SERVER_USER=www-data
    CAPD_GROUP_ARGS=(--group www-data)
    AS_SERVER_USER=(setpriv --reuid=www-data --regid=www-data --init-groups)
fi

# start_capd RUNDIR ARGS...: capd --name default ARGS in the background; sets CAPD_PID.
start_capd() {
    local rundir=$1
    shift
    "$BUILD/capd" --name default "${CAPD_GROUP_ARGS[@]}" "$@" >"$rundir/capd.log" 2>&1 &
    CAPD_PID=$!
    pids+=("$CAPD_PID")
    wait_ring default
}

# start_lighttpd RUNDIR PORT [FCGI_BIN_DIR]: lighttpd.conf (which spawns capd.fcgi from
# FCGI_BIN_DIR, default $BUILD, with CAPD_MAX_VIEWERS and CAPD_FCGI_ARGS from the environment);
# sets LIGHTTPD_PID.
start_lighttpd() {
    local rundir=$1 port=$2 bin=${3:-$BUILD}
    CAPD_PORT=$port CAPD_ROOT=$ROOT CAPD_BIN=$bin CAPD_RUNDIR=$rundir \
        lighttpd -D -f "$ROOT/lighttpd.conf" >"$rundir/lighttpd.out" 2>&1 &
    LIGHTTPD_PID=$!
    pids+=("$LIGHTTPD_PID")
}

# start_apache RUNDIR PORT VIEWERS [RESPONDER_ARGS...]: Debian's apache2 (event MPM) from a
# ServerRoot of its own in RUNDIR/apache on 127.0.0.1:PORT, with deploy/apache/
# capd-proxy-fcgi.conf (mod_proxy_fcgi, flushpackets=on) included unchanged, and capd.fcgi
# --listen on the snippet's socket as deploy/apache/capd-fcgi.service runs it. Worker threads
# are sized for VIEWERS and all started up front (no viewer waits for a process spawn).
# Sets APACHE_PID and RESPONDER_PID.
start_apache() {
    local rundir=$1 port=$2 viewers=$3 srv=$1/apache m children workers
    shift 3
    local modules=/usr/lib/apache2/modules apache
    apache=$(command -v apache2 || echo /usr/sbin/apache2)
    mkdir -p "$srv"/{run,logs,sock}
    [ -n "$SERVER_USER" ] && chown "$SERVER_USER:" "$srv/sock"
    # 64 threads per process, enough processes for the viewers plus 32 spare threads.
    children=$(((viewers + 32 + 63) / 64))
    [ "$children" -ge 2 ] || children=2
    workers=$((children * 64))
    {
        cat <<EOF
ServerRoot "$srv"
ServerName 127.0.0.1
Listen 127.0.0.1:$port
PidFile "$srv/run/apache.pid"
DefaultRuntimeDir "$srv/run"
Mutex file:$srv/run default
ErrorLog "$srv/logs/error.log"
LogLevel warn
EOF
        for m in mpm_event authz_core authz_host mime dir alias env proxy proxy_fcgi; do
            echo "LoadModule ${m}_module $modules/mod_$m.so"
        done
        [ -n "$SERVER_USER" ] && printf 'User %s\nGroup %s\n' "$SERVER_USER" "$SERVER_USER"
        cat <<EOF
TypesConfig /etc/mime.types
DocumentRoot "$srv/htdocs"
Include "$ROOT/deploy/apache/capd-mpm-event.conf"
<IfModule mpm_event_module>
    ServerLimit         $((children + 4))
    ThreadLimit         64
    ThreadsPerChild     64
    MaxRequestWorkers   $workers
    StartServers        $children
    MinSpareThreads     32
    MaxSpareThreads     $workers
</IfModule>
Define CAPD_SOCKET "$srv/sock/capd-fcgi.sock"
Define CAPD_WWW "$ROOT/www"
Include "$ROOT/deploy/apache/capd-proxy-fcgi.conf"
EOF
    } >"$srv/apache.conf"
    mkdir -p "$srv/htdocs"
    rm -f "$srv/sock/capd-fcgi.sock"
    "${AS_SERVER_USER[@]}" "$BUILD/capd.fcgi" --listen "unix:$srv/sock/capd-fcgi.sock" "$@" \
        >"$rundir/responder.log" 2>&1 &
    RESPONDER_PID=$!
    pids+=("$RESPONDER_PID")
    for _ in $(seq 50); do [ -S "$srv/sock/capd-fcgi.sock" ] && break; sleep 0.1; done
    "$apache" -d "$srv" -f "$srv/apache.conf" -DFOREGROUND >"$rundir/apache.out" 2>&1 &
    APACHE_PID=$!
    pids+=("$APACHE_PID")
}
