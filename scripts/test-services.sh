# shellcheck shell=bash
#
# Throwaway PostgreSQL, MariaDB and Redis instances for the test suite.
#
# Meant to be sourced, not executed:
#
#     source scripts/test-services.sh
#     require_binaries            # checks what start_test_services will need
#     trap stop_test_services EXIT
#     start_test_services         # exports DBAPI_TEST_{PG,MYSQL,REDIS}_URL
#
# For each service, if its URL variable is already set it is used as is and
# nothing is started; otherwise a fresh instance is created in a temp dir
# under ${TMPDIR:-/tmp}, listening on a free TCP port on 127.0.0.1:
#
#     DBAPI_TEST_PG_URL     postgres://postgres@127.0.0.1:PORT/postgres  (trust auth, superuser)
#     DBAPI_TEST_MYSQL_URL  mysql://root@127.0.0.1:PORT/mysql            (root, empty password)
#     DBAPI_TEST_REDIS_URL  redis://127.0.0.1:PORT
#
# The instances are tuned for speed, not durability (fsync off etc.): their
# data is deleted by stop_test_services.
#
# Knobs (environment):
#     PG_BIN                     PostgreSQL server bin dir (default: newest /usr/lib/postgresql/*/bin)
#     DBAPI_TEST_START_TIMEOUT   seconds to wait for each server to accept connections (default 60)
#     DBAPI_TEST_KEEP_DIRS=1     keep the temp dirs (data and logs) after stop_test_services
#
# Works as root (PostgreSQL then runs as the `postgres` OS user, MariaDB with
# --user=root) and as an ordinary user. Safe with `set -euo pipefail`.

_DBAPI_REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"

# State of what this shell started (cleared by stop_test_services).
_DBAPI_BASE_DIR=""
_DBAPI_EXTRA_DIRS=()
_DBAPI_PG_DATA=""
_DBAPI_MY_PID=""
_DBAPI_REDIS_PID=""
_DBAPI_STARTED_URLS=()

# Binaries found by require_binaries.
_DBAPI_PG_BINDIR=""
_DBAPI_PG_ISREADY=""
_DBAPI_MARIADBD=""
_DBAPI_MARIADB_INSTALL_DB=""
_DBAPI_MARIADB_CLIENT=""
_DBAPI_REDIS_SERVER=""
_DBAPI_REDIS_CLI=""

_dbapi_log() { printf 'test-services: %s\n' "$*" >&2; }

_dbapi_is_root() { [[ "$(id -u)" -eq 0 ]]; }

# Print the last lines of each given file that exists.
_dbapi_tail_logs() {
    local f
    for f in "$@"; do
        [[ -f "$f" ]] || continue
        printf -- '----- last lines of %s -----\n' "$f" >&2
        tail -n 30 "$f" >&2 || true
        printf -- '-----\n' >&2
    done
}

# First of the given program names found in PATH, in the sbin dirs
# (mariadbd lives in /usr/sbin, which is not in every user's PATH) or in
# the newest PostgreSQL bin dir. Also used by tests/compat/run.sh.
dbapi_find_prog() {
    local name dir
    for name in "$@"; do
        if command -v "$name" >/dev/null 2>&1; then
            command -v "$name"
            return 0
        fi
        for dir in /usr/sbin /usr/local/sbin /sbin /usr/libexec $(compgen -G '/usr/lib/postgresql/*/bin' | sort -rV); do
            if [[ -x "$dir/$name" ]]; then
                printf '%s\n' "$dir/$name"
                return 0
            fi
        done
    done
    return 1
}

_dbapi_pg_bindir_ok() {
    [[ -n "$1" && -x "$1/initdb" && -x "$1/pg_ctl" && -x "$1/postgres" ]]
}

# Sets _DBAPI_PG_BINDIR: $PG_BIN if set, else the newest
# /usr/lib/postgresql/*/bin, else the directory of `initdb` in PATH.
_dbapi_find_pg_bindir() {
    local d initdb
    if [[ -n "${PG_BIN:-}" ]]; then
        if _dbapi_pg_bindir_ok "$PG_BIN"; then
            _DBAPI_PG_BINDIR="$PG_BIN"
            return 0
        fi
        _dbapi_log "PG_BIN=$PG_BIN does not contain initdb, pg_ctl and postgres"
        return 1
    fi
    while IFS= read -r d; do
        if _dbapi_pg_bindir_ok "$d"; then
            _DBAPI_PG_BINDIR="$d"
            return 0
        fi
    done < <(compgen -G '/usr/lib/postgresql/*/bin' | sort -rV)
    if initdb="$(command -v initdb 2>/dev/null)" && _dbapi_pg_bindir_ok "$(dirname "$initdb")"; then
        _DBAPI_PG_BINDIR="$(dirname "$initdb")"
        return 0
    fi
    return 1
}

# Checks that every program needed to start the services whose URL is not
# given is installed. On failure prints what is missing and the Debian
# packages that provide it, and returns 1. (The client programs used here --
# pg_isready, mariadb, redis-cli -- come with the server packages' dependencies.)
require_binaries() {
    local -a missing=() pkgs=()
    local p

    if [[ -z "${DBAPI_TEST_PG_URL:-}" ]]; then
        if ! _dbapi_find_pg_bindir; then
            missing+=("PostgreSQL server (initdb, pg_ctl, postgres; searched \${PG_BIN}, /usr/lib/postgresql/*/bin, PATH)")
            pkgs+=(postgresql)
        else
            if [[ -x "$_DBAPI_PG_BINDIR/pg_isready" ]]; then
                _DBAPI_PG_ISREADY="$_DBAPI_PG_BINDIR/pg_isready"
            elif p="$(dbapi_find_prog pg_isready)"; then
                _DBAPI_PG_ISREADY="$p"
            else
                missing+=("pg_isready")
                pkgs+=(postgresql)
            fi
            if _dbapi_is_root; then
                if ! id -u postgres >/dev/null 2>&1; then
                    missing+=("OS user 'postgres' (PostgreSQL refuses to run as root; the postgresql package creates it)")
                    pkgs+=(postgresql)
                fi
                if ! command -v runuser >/dev/null 2>&1; then
                    missing+=("runuser")
                    pkgs+=(util-linux)
                fi
            fi
        fi
    fi

    if [[ -z "${DBAPI_TEST_MYSQL_URL:-}" ]]; then
        if p="$(dbapi_find_prog mariadbd mysqld)"; then _DBAPI_MARIADBD="$p"; else
            missing+=("mariadbd"); pkgs+=(mariadb-server); fi
        if p="$(dbapi_find_prog mariadb-install-db mysql_install_db)"; then _DBAPI_MARIADB_INSTALL_DB="$p"; else
            missing+=("mariadb-install-db"); pkgs+=(mariadb-server); fi
        if p="$(dbapi_find_prog mariadb mysql)"; then _DBAPI_MARIADB_CLIENT="$p"; else
            missing+=("mariadb (client)"); pkgs+=(mariadb-server); fi
    fi

    if [[ -z "${DBAPI_TEST_REDIS_URL:-}" ]]; then
        if p="$(dbapi_find_prog redis-server)"; then _DBAPI_REDIS_SERVER="$p"; else
            missing+=("redis-server"); pkgs+=(redis-server); fi
        if p="$(dbapi_find_prog redis-cli)"; then _DBAPI_REDIS_CLI="$p"; else
            missing+=("redis-cli"); pkgs+=(redis-server); fi
    fi

    # tests/read_replica.rs starts a PostgreSQL primary with a standby and a
    # MariaDB primary with a replica of its own, whatever the URLs say.
    if ! _dbapi_find_pg_bindir || [[ ! -x "$_DBAPI_PG_BINDIR/pg_basebackup" ]]; then
        missing+=("PostgreSQL server programs with pg_basebackup (the read replica tests)")
        pkgs+=(postgresql)
    fi
    dbapi_find_prog mariadbd mysqld >/dev/null || { missing+=("mariadbd (the read replica tests)"); pkgs+=(mariadb-server); }
    dbapi_find_prog mariadb-install-db mysql_install_db >/dev/null ||
        { missing+=("mariadb-install-db (the read replica tests)"); pkgs+=(mariadb-server); }

    # The TLS Redis test makes its certificates with the openssl command.
    command -v openssl >/dev/null 2>&1 || { missing+=("openssl"); pkgs+=(openssl); }

    # The PostgREST-client compatibility suite runs on Node.js.
    if [[ -x "$_DBAPI_REPO_ROOT/tests/compat/run.sh" ]]; then
        command -v node >/dev/null 2>&1 || { missing+=("node"); pkgs+=(nodejs npm); }
        command -v npm >/dev/null 2>&1 || { missing+=("npm"); pkgs+=(nodejs npm); }
    fi

    if ((${#missing[@]} == 0)); then
        return 0
    fi
    # Deduplicate the package list, keeping order.
    local -a uniq=()
    local seen=" "
    for p in "${pkgs[@]}"; do
        [[ "$seen" == *" $p "* ]] && continue
        seen+="$p "
        uniq+=("$p")
    done
    _dbapi_log "missing programs needed by the test suite:"
    for p in "${missing[@]}"; do
        printf '    - %s\n' "$p" >&2
    done
    _dbapi_log "install them (Debian/Ubuntu) with:"
    printf '    apt-get update && apt-get install -y %s\n' "${uniq[*]}" >&2
    _dbapi_log "or point DBAPI_TEST_PG_URL / DBAPI_TEST_MYSQL_URL / DBAPI_TEST_REDIS_URL at running servers."
    return 1
}

# Prints a TCP port that is free on 127.0.0.1. Ports are drawn from
# 20000-32000, below Linux's ephemeral range (32768+), so that outgoing
# client connections cannot grab the port between this check and the
# server binding it. A clash with a concurrent run is still possible;
# callers retry with a new port when the server reports the address in use.
# Also used by tests/compat/run.sh.
dbapi_free_port() {
    local port
    if command -v python3 >/dev/null 2>&1; then
        if port="$(python3 -c '
import random, socket, sys
for _ in range(500):
    p = random.randint(20000, 32000)
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        s.bind(("127.0.0.1", p))
    except OSError:
        continue
    finally:
        s.close()
    print(p)
    sys.exit(0)
sys.exit(1)
' 2>/dev/null)" && [[ -n "$port" ]]; then
            printf '%s\n' "$port"
            return 0
        fi
    fi
    # Fallback without python3: probe for a port nothing listens on.
    local i
    for ((i = 0; i < 500; i++)); do
        port=$((20000 + (RANDOM * 32768 + RANDOM) % 12000))
        if ! (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
            printf '%s\n' "$port"
            return 0
        fi
    done
    _dbapi_log "could not find a free TCP port"
    return 1
}

# True while process $1 exists and is not a zombie.
_dbapi_alive() {
    local pid="$1" stat=""
    [[ -n "$pid" ]] || return 1
    kill -0 "$pid" 2>/dev/null || return 1
    # Field 3 of /proc/PID/stat, after the "(comm)" field that may hold spaces.
    stat="$(cat "/proc/$pid/stat" 2>/dev/null || true)"
    stat="${stat##*) }"
    [[ "${stat%% *}" != "Z" ]]
}

# Stops process $1: SIGTERM, up to 20 s grace, then SIGKILL.
_dbapi_kill() {
    local pid="$1" i
    _dbapi_alive "$pid" || return 0
    kill -TERM "$pid" 2>/dev/null || true
    for ((i = 0; i < 200; i++)); do
        _dbapi_alive "$pid" || break
        sleep 0.1
    done
    if _dbapi_alive "$pid"; then
        _dbapi_log "process $pid did not stop after SIGTERM, killing it"
        kill -KILL "$pid" 2>/dev/null || true
        for ((i = 0; i < 50; i++)); do
            _dbapi_alive "$pid" || break
            sleep 0.1
        done
    fi
    wait "$pid" 2>/dev/null || true
}

# Starts "$@" detached from this shell (so no job-control noise and no
# zombie left behind), stdin from /dev/null, stdout/stderr to file $1.
# Prints the PID.
_dbapi_spawn() {
    local out="$1"
    shift
    ( "$@" </dev/null >>"$out" 2>&1 & echo $! )
}

_dbapi_timeout() { printf '%s\n' "${DBAPI_TEST_START_TIMEOUT:-60}"; }

# Runs a PostgreSQL server binary: as the `postgres` OS user when root
# (PostgreSQL refuses to run as root), from a directory it can read.
_dbapi_as_pg() {
    local dir="$1"
    shift
    if _dbapi_is_root; then
        (cd "$dir" && runuser -u postgres -- "$@")
    else
        (cd "$dir" && "$@")
    fi
}

_dbapi_start_pg() {
    local dir="$_DBAPI_BASE_DIR/pg"
    mkdir -p "$dir"
    if _dbapi_is_root; then
        chown postgres: "$dir"
        chmod 700 "$dir"
        if ! runuser -u postgres -- test -w "$dir" 2>/dev/null; then
            # e.g. TMPDIR under /root: the postgres user cannot reach it.
            rmdir "$dir" 2>/dev/null || true
            dir="$(mktemp -d /tmp/dbapi-test-pg.XXXXXXXX)"
            _DBAPI_EXTRA_DIRS+=("$dir")
            chown postgres: "$dir"
            _dbapi_log "user postgres cannot write under $_DBAPI_BASE_DIR; using $dir for PostgreSQL"
        fi
    fi
    local data="$dir/data" bin="$_DBAPI_PG_BINDIR"

    local locale=C
    if locale -a 2>/dev/null | grep -qiE '^c\.utf-?8$'; then
        locale=C.UTF-8
    fi
    if ! _dbapi_as_pg "$dir" "$bin/initdb" -D "$data" -U postgres -A trust -E UTF8 \
        --locale="$locale" --no-sync --no-instructions >"$dir/initdb.log" 2>&1; then
        _dbapi_log "PostgreSQL initdb failed"
        _dbapi_tail_logs "$dir/initdb.log"
        return 1
    fi
    _DBAPI_PG_DATA="$data"
    cat >>"$data/postgresql.conf" <<'CONF'

# --- throwaway test instance (scripts/test-services.sh) ---
listen_addresses = '127.0.0.1'
unix_socket_directories = ''
max_connections = 300
shared_buffers = 128MB
fsync = off
synchronous_commit = off
full_page_writes = off
wal_level = minimal
max_wal_senders = 0
max_wal_size = 1GB
logging_collector = off
CONF

    local attempt port timeout i log ok
    timeout="$(_dbapi_timeout)"
    for attempt in 1 2 3; do
        port="$(dbapi_free_port)" || return 1
        log="$dir/postgres.log"
        [[ -f "$log" ]] && mv -f "$log" "$dir/postgres.attempt$((attempt - 1)).log"
        if ! _dbapi_as_pg "$dir" "$bin/pg_ctl" -D "$data" -l "$log" -o "-p $port" \
            -w -t "$timeout" start >"$dir/pg_ctl.log" 2>&1; then
            if grep -qi 'address already in use' "$log" 2>/dev/null; then
                _dbapi_log "PostgreSQL: port $port taken meanwhile, retrying with another"
                continue
            fi
            _dbapi_log "PostgreSQL did not start within ${timeout}s (data dir $data)"
            _dbapi_tail_logs "$dir/pg_ctl.log" "$log"
            return 1
        fi
        # pg_ctl -w waited for the server; make sure it accepts TCP connections.
        ok=0
        for ((i = 0; i < timeout * 10; i++)); do
            if "$_DBAPI_PG_ISREADY" -q -h 127.0.0.1 -p "$port" -U postgres -d postgres -t 1; then
                ok=1
                break
            fi
            sleep 0.1
        done
        if ((ok == 0)); then
            _dbapi_log "PostgreSQL does not accept connections on 127.0.0.1:$port after ${timeout}s"
            _dbapi_tail_logs "$log"
            return 1
        fi
        export DBAPI_TEST_PG_URL="postgres://postgres@127.0.0.1:$port/postgres"
        _DBAPI_STARTED_URLS+=(DBAPI_TEST_PG_URL)
        return 0
    done
    _dbapi_log "PostgreSQL: no free port after 3 attempts"
    _dbapi_tail_logs "$dir/postgres.log"
    return 1
}

_dbapi_stop_pg() {
    local data="$_DBAPI_PG_DATA"
    [[ -n "$data" && -f "$data/postmaster.pid" ]] || { _DBAPI_PG_DATA=""; return 0; }
    local pid dir
    pid="$(head -n 1 "$data/postmaster.pid" 2>/dev/null || true)"
    dir="$(dirname "$data")"
    # The data is thrown away, so skip the shutdown checkpoint.
    if ! _dbapi_as_pg "$dir" "$_DBAPI_PG_BINDIR/pg_ctl" -D "$data" -m immediate -w -t 30 stop \
        >>"$dir/pg_ctl.log" 2>&1; then
        if [[ "$pid" =~ ^[0-9]+$ ]] && _dbapi_alive "$pid"; then
            _dbapi_log "pg_ctl stop failed; killing postmaster $pid"
            kill -KILL "$pid" 2>/dev/null || true
        fi
    fi
    _DBAPI_PG_DATA=""
}

# mariadbd options shared by mariadb-install-db and the server.
_dbapi_mariadb_opts() {
    local -a opts=(
        --skip-log-bin
        --skip-name-resolve
        --innodb-buffer-pool-size=64M
        --innodb-log-file-size=16M
        --innodb-flush-log-at-trx-commit=0
        --innodb-doublewrite=0
        --character-set-server=utf8mb4
        --collation-server=utf8mb4_general_ci
    )
    printf '%s\n' "${opts[@]}"
}

_dbapi_start_mariadb() {
    local dir="$_DBAPI_BASE_DIR/mysql"
    mkdir -p "$dir/tmp"
    local data="$dir/data"
    local -a user_opt=() common=()
    _dbapi_is_root && user_opt=(--user=root)
    mapfile -t common < <(_dbapi_mariadb_opts)

    # --no-defaults: never read /etc/mysql/* (it points at the system
    # instance's datadir, socket and port). 'normal' root authentication
    # creates root@localhost, root@127.0.0.1 and root@::1 with an empty
    # password (the default, 'socket', only allows root over the Unix socket).
    if ! (cd "$dir" && "$_DBAPI_MARIADB_INSTALL_DB" --no-defaults "${user_opt[@]}" \
        --datadir="$data" --auth-root-authentication-method=normal --skip-test-db \
        "${common[@]}" >"$dir/install.log" 2>&1 </dev/null); then
        _dbapi_log "mariadb-install-db failed"
        _dbapi_tail_logs "$dir/install.log"
        return 1
    fi

    # Unix socket paths are limited to ~107 bytes.
    local sock="$dir/mysqld.sock"
    if ((${#sock} > 100)); then
        local sdir
        sdir="$(mktemp -d /tmp/dbapi-my.XXXXXX)"
        _DBAPI_EXTRA_DIRS+=("$sdir")
        sock="$sdir/mysqld.sock"
    fi

    local attempt port timeout i log pid ok err=""
    timeout="$(_dbapi_timeout)"
    for attempt in 1 2 3; do
        port="$(dbapi_free_port)" || return 1
        log="$dir/mysqld.log"
        [[ -f "$log" ]] && mv -f "$log" "$dir/mysqld.attempt$((attempt - 1)).log"
        pid="$(_dbapi_spawn "$dir/mysqld.out" "$_DBAPI_MARIADBD" --no-defaults "${user_opt[@]}" \
            --datadir="$data" --tmpdir="$dir/tmp" \
            --port="$port" --bind-address=127.0.0.1 --socket="$sock" \
            --pid-file="$dir/mysqld.pid" --log-error="$log" \
            --max-connections=500 "${common[@]}")"
        _DBAPI_MY_PID="$pid"
        ok=0
        for ((i = 0; i < timeout * 10; i++)); do
            if ! _dbapi_alive "$pid"; then
                ok=2
                break
            fi
            # A real login as root over TCP, not just a ping; and the server
            # that answers must be ours, not another one that holds the port
            # (ours then exits shortly with "address in use").
            if err="$("$_DBAPI_MARIADB_CLIENT" --no-defaults --protocol=TCP -h 127.0.0.1 -P "$port" \
                -u root --connect-timeout=2 -N -B -e 'SELECT @@pid_file' 2>&1 </dev/null)"; then
                if [[ "$err" == "$dir/mysqld.pid" ]]; then
                    ok=1
                    break
                fi
                err="port $port is answered by another server (pid file $err)"
            fi
            sleep 0.1
        done
        if ((ok == 1)); then
            export DBAPI_TEST_MYSQL_URL="mysql://root@127.0.0.1:$port/mysql"
            _DBAPI_STARTED_URLS+=(DBAPI_TEST_MYSQL_URL)
            return 0
        fi
        if ((ok == 2)); then
            wait "$pid" 2>/dev/null || true
            _DBAPI_MY_PID=""
            if grep -qiE 'address already in use|errno: 98|error: 98' "$log" 2>/dev/null; then
                _dbapi_log "MariaDB: port $port taken meanwhile, retrying with another"
                continue
            fi
            _dbapi_log "MariaDB exited during startup (data dir $data)"
            _dbapi_tail_logs "$log" "$dir/mysqld.out"
            return 1
        fi
        _dbapi_log "MariaDB does not accept root logins on 127.0.0.1:$port after ${timeout}s; last client error: $err"
        _dbapi_tail_logs "$log" "$dir/mysqld.out"
        return 1
    done
    _dbapi_log "MariaDB: no free port after 3 attempts"
    return 1
}

_dbapi_start_redis() {
    local dir="$_DBAPI_BASE_DIR/redis"
    mkdir -p "$dir"
    local attempt port timeout i log pid ok
    timeout="$(_dbapi_timeout)"
    for attempt in 1 2 3; do
        port="$(dbapi_free_port)" || return 1
        log="$dir/redis.log"
        [[ -f "$log" ]] && mv -f "$log" "$dir/redis.attempt$((attempt - 1)).log"
        pid="$(_dbapi_spawn "$dir/redis.out" "$_DBAPI_REDIS_SERVER" \
            --port "$port" --bind 127.0.0.1 --save "" --appendonly no \
            --dir "$dir" --logfile "$log" --daemonize no)"
        _DBAPI_REDIS_PID="$pid"
        ok=0
        for ((i = 0; i < timeout * 10; i++)); do
            if ! _dbapi_alive "$pid"; then
                ok=2
                break
            fi
            # Must be our server answering, not another one on that port.
            if "$_DBAPI_REDIS_CLI" -h 127.0.0.1 -p "$port" info server 2>/dev/null </dev/null |
                tr -d '\r' | grep -qx "process_id:$pid"; then
                ok=1
                break
            fi
            sleep 0.1
        done
        if ((ok == 1)); then
            export DBAPI_TEST_REDIS_URL="redis://127.0.0.1:$port"
            _DBAPI_STARTED_URLS+=(DBAPI_TEST_REDIS_URL)
            return 0
        fi
        if ((ok == 2)); then
            wait "$pid" 2>/dev/null || true
            _DBAPI_REDIS_PID=""
            if grep -qi 'address already in use' "$log" "$dir/redis.out" 2>/dev/null; then
                _dbapi_log "Redis: port $port taken meanwhile, retrying with another"
                continue
            fi
            _dbapi_log "Redis exited during startup"
            _dbapi_tail_logs "$log" "$dir/redis.out"
            return 1
        fi
        _dbapi_log "Redis does not answer PING on 127.0.0.1:$port after ${timeout}s"
        _dbapi_tail_logs "$log" "$dir/redis.out"
        return 1
    done
    _dbapi_log "Redis: no free port after 3 attempts"
    return 1
}

# Starts every service whose URL variable is unset and exports its URL.
# On failure, stops what it started and returns 1.
start_test_services() {
    local need_pg=0 need_my=0 need_redis=0
    [[ -z "${DBAPI_TEST_PG_URL:-}" ]] && need_pg=1
    [[ -z "${DBAPI_TEST_MYSQL_URL:-}" ]] && need_my=1
    [[ -z "${DBAPI_TEST_REDIS_URL:-}" ]] && need_redis=1
    if ((need_pg + need_my + need_redis == 0)); then
        return 0
    fi
    require_binaries || return 1

    if [[ -z "$_DBAPI_BASE_DIR" ]]; then
        _DBAPI_BASE_DIR="$(mktemp -d "${TMPDIR:-/tmp}/dbapi-test.XXXXXXXX")" || {
            _dbapi_log "cannot create a temp dir under ${TMPDIR:-/tmp}"
            return 1
        }
        # Traversable (not listable) so the postgres user can reach pg/.
        chmod 711 "$_DBAPI_BASE_DIR"
    fi

    local started_at=$SECONDS
    if ((need_pg)) && ! _dbapi_start_pg; then
        stop_test_services
        return 1
    fi
    if ((need_my)) && ! _dbapi_start_mariadb; then
        stop_test_services
        return 1
    fi
    if ((need_redis)) && ! _dbapi_start_redis; then
        stop_test_services
        return 1
    fi
    _dbapi_log "started ${_DBAPI_STARTED_URLS[*]} in $((SECONDS - started_at))s (dir $_DBAPI_BASE_DIR)"
    return 0
}

# Stops whatever start_test_services started in this shell, removes its temp
# dirs and unsets the URLs it exported. Idempotent; always returns 0 (as an
# EXIT trap it leaves the script's exit status alone).
stop_test_services() {
    local v d
    _dbapi_stop_pg || true
    if [[ -n "$_DBAPI_MY_PID" ]]; then
        _dbapi_kill "$_DBAPI_MY_PID" || true
        _DBAPI_MY_PID=""
    fi
    if [[ -n "$_DBAPI_REDIS_PID" ]]; then
        _dbapi_kill "$_DBAPI_REDIS_PID" || true
        _DBAPI_REDIS_PID=""
    fi
    for v in "${_DBAPI_STARTED_URLS[@]}"; do
        unset "$v"
    done
    _DBAPI_STARTED_URLS=()
    for d in "$_DBAPI_BASE_DIR" "${_DBAPI_EXTRA_DIRS[@]}"; do
        [[ -n "$d" && -d "$d" ]] || continue
        if [[ "${DBAPI_TEST_KEEP_DIRS:-0}" == 1 ]]; then
            _dbapi_log "keeping $d (DBAPI_TEST_KEEP_DIRS=1)"
        else
            rm -rf -- "$d" || true
        fi
    done
    _DBAPI_BASE_DIR=""
    _DBAPI_EXTRA_DIRS=()
    return 0
}
