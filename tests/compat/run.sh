#!/usr/bin/env bash
# PostgREST-client compatibility suite: drives dbapi-runtime with
# @supabase/postgrest-js (tests/compat/*.test.mjs, node's built-in test
# runner), postgrest-py (tests/compat/py) and @supabase/supabase-js
# (tests/compat/supabase*.test.mjs, through createClient(url, key)) on
# PostgreSQL, MariaDB/MySQL and SQLite.
#
#     DBAPI_TEST_PG_URL=postgres://postgres@127.0.0.1:5432/postgres \
#     DBAPI_TEST_MYSQL_URL=mysql://root@127.0.0.1:3306/mysql \
#         tests/compat/run.sh [extra args for `node --test`]
#
# ./scripts/test.sh starts throwaway servers, sets both variables and calls
# this script after the cargo tests.
#
# For each engine: a fresh, uniquely named database (a temp file for SQLite)
# is created and loaded with api-runtime/tests/fixtures/<engine>.sql, the
# runtime serves it on free ports under `api.pathPrefix: /rest/v1` (where
# supabase-js calls it; the PostgREST clients get the prefixed URL), the
# tests run against it, and everything (server, database, temp files) is
# removed afterwards, also on failure or Ctrl-C.
#
# Knobs (environment):
#     DBAPI_TEST_PG_URL          PostgreSQL superuser URL (needed for postgres)
#     DBAPI_TEST_MYSQL_URL       MySQL/MariaDB root URL (needed for mysql)
#     DBAPI_COMPAT_ENGINES       engines to run, comma-separated
#                                (default: postgres,mysql,sqlite)
#     DBAPI_RUNTIME_BIN          a prebuilt dbapi-runtime binary: skips the build
#     DBAPI_COMPAT_READY_TIMEOUT seconds to wait for /readyz (default 60)
#     DBAPI_COMPAT_KEEP=1        keep the databases and temp dir (for debugging)
#     CARGO_TARGET_DIR           as for cargo (default: <repo>/target)
#
# Exit status: 0 when every selected engine passed, 1 otherwise.
set -euo pipefail

COMPAT_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO_ROOT="$(cd "$COMPAT_DIR/../.." && pwd)"
FIXTURES="$REPO_ROOT/api-runtime/tests/fixtures"

log() { printf 'compat: %s\n' "$*" >&2; }
die() { log "$*"; exit 1; }

# ------------------------------------------------------------ prerequisites

if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
    die "node and npm are required: install nodejs and npm (apt-get install nodejs npm)"
fi
node_major="$(node -p 'process.versions.node.split(".")[0]')"
if ((node_major < 20)); then
    die "node $(node --version) is too old (need 20 or newer): install nodejs 20+ (apt-get install nodejs npm)"
fi
command -v python3 >/dev/null 2>&1 || die "python3 is required (apt-get install python3)"

IFS=',' read -r -a ENGINES <<<"${DBAPI_COMPAT_ENGINES:-postgres,mysql,sqlite}"
for engine in "${ENGINES[@]}"; do
    case "$engine" in
        postgres)
            [[ -n "${DBAPI_TEST_PG_URL:-}" ]] || die "DBAPI_TEST_PG_URL is not set. Run ./scripts/test.sh, which starts throwaway PostgreSQL and MariaDB servers and sets it, or set it to a PostgreSQL superuser URL (postgres://postgres@127.0.0.1:5432/postgres)."
            ;;
        mysql)
            [[ -n "${DBAPI_TEST_MYSQL_URL:-}" ]] || die "DBAPI_TEST_MYSQL_URL is not set. Run ./scripts/test.sh, which starts throwaway PostgreSQL and MariaDB servers and sets it, or set it to a MySQL/MariaDB root URL (mysql://root@127.0.0.1:3306/mysql)."
            ;;
        sqlite) ;;
        *) die "unknown engine \"$engine\" in DBAPI_COMPAT_ENGINES (use postgres, mysql, sqlite)" ;;
    esac
done

# The helpers the test command uses to start servers: dbapi_find_prog,
# dbapi_free_port.
# shellcheck source=scripts/test-services.sh
source "$REPO_ROOT/scripts/test-services.sh"

PSQL="" MYSQL_CLIENT=""
for engine in "${ENGINES[@]}"; do
    case "$engine" in
        postgres) PSQL="$(dbapi_find_prog psql)" || die "psql not found: install postgresql-client (apt-get install postgresql-client)" ;;
        mysql) MYSQL_CLIENT="$(dbapi_find_prog mariadb mysql)" || die "the mariadb client was not found: install mariadb-client (apt-get install mariadb-client)" ;;
    esac
done

# ------------------------------------------------------------ node modules

# npm ci when node_modules is missing or was installed from another lock file.
lock_stamp="$(cat "$COMPAT_DIR/package.json" "$COMPAT_DIR/package-lock.json" | cksum)"
stamp_file="$COMPAT_DIR/node_modules/.dbapi-compat-stamp"
if [[ ! -f "$stamp_file" || "$(cat "$stamp_file")" != "$lock_stamp" ]]; then
    log "installing node modules (npm ci)"
    (cd "$COMPAT_DIR" && npm ci --no-audit --no-fund) || die "npm ci failed in $COMPAT_DIR (is the npm registry reachable?)"
    printf '%s\n' "$lock_stamp" >"$stamp_file"
fi

# ------------------------------------------------------------ python client

# postgrest-py in a virtualenv of its own, made again when requirements.txt
# changes.
PY_DIR="$COMPAT_DIR/py"
VENV="$COMPAT_DIR/.venv"
py_stamp="$(cksum <"$PY_DIR/requirements.txt")"
if [[ ! -f "$VENV/.dbapi-compat-stamp" || "$(cat "$VENV/.dbapi-compat-stamp")" != "$py_stamp" ]]; then
    log "installing postgrest-py into $VENV (pip install -r py/requirements.txt)"
    rm -rf "$VENV"
    python3 -m venv "$VENV" || die "python3 -m venv failed: install python3-venv (apt-get install python3-venv)"
    "$VENV/bin/pip" install --quiet --disable-pip-version-check -r "$PY_DIR/requirements.txt" \
        || die "pip install failed in $VENV (is the PyPI registry reachable?)"
    printf '%s\n' "$py_stamp" >"$VENV/.dbapi-compat-stamp"
fi

# ------------------------------------------------------------ runtime binary

if [[ -n "${DBAPI_RUNTIME_BIN:-}" ]]; then
    RUNTIME_BIN="$DBAPI_RUNTIME_BIN"
else
    command -v cargo >/dev/null 2>&1 || die "cargo not found: install the Rust toolchain (https://rustup.rs)"
    target_dir="${CARGO_TARGET_DIR:-$REPO_ROOT/target}"
    log "building dbapi-runtime (cargo build -p dbapi-runtime)"
    (cd "$REPO_ROOT" && CARGO_TARGET_DIR="$target_dir" cargo build -p dbapi-runtime) || die "cargo build -p dbapi-runtime failed"
    RUNTIME_BIN="$target_dir/debug/dbapi-runtime"
fi
[[ -x "$RUNTIME_BIN" ]] || die "runtime binary $RUNTIME_BIN not found or not executable"

# ------------------------------------------------------------ cleanup state

WORK_DIR="$(mktemp -d "${TMPDIR:-/tmp}/dbapi-compat.XXXXXXXX")"
# Served as a Supabase project serves PostgREST, so createClient(url, key)
# works unchanged.
PATH_PREFIX=/rest/v1
CONFIG_FILE="$WORK_DIR/config.yaml"
# Callers without a key (the PostgREST clients) are the anonymous role;
# supabase-js sends a key made by `dbapi-runtime keygen`, as a Supabase
# project's key. Both roles may do everything: the suites check the
# grammar, tests/roles*.rs check the rules.
KEYGEN_OUTPUT="$("$RUNTIME_BIN" keygen --name supabase-js --role service)" || die "dbapi-runtime keygen failed"
DBAPI_API_KEY="$(sed -n 's/^# \(dbapi_[0-9a-f]*\)$/\1/p' <<<"$KEYGEN_OUTPUT")"
[[ -n "$DBAPI_API_KEY" ]] || die "no key in the output of dbapi-runtime keygen"
{
    printf 'api:\n  pathPrefix: %s\n  aggregates: true\n' "$PATH_PREFIX"
    printf 'auth:\n  anonymousRole: anon\n'
    printf 'roles:\n'
    for role in anon service; do
        printf -- '- {name: %s, rules: [{tables: ["*"], verbs: [GET, POST, PATCH, PUT, DELETE], functions: ["*"]}]}\n' "$role"
    done
    grep -v '^#' <<<"$KEYGEN_OUTPUT"
} >"$CONFIG_FILE"
SERVER_PID=""
PG_DBS=()
MY_DBS=()

stop_server() {
    local pid="$SERVER_PID" i
    SERVER_PID=""
    [[ -n "$pid" ]] || return 0
    if kill -0 "$pid" 2>/dev/null; then
        kill -TERM "$pid" 2>/dev/null || true
        for ((i = 0; i < 100; i++)); do
            kill -0 "$pid" 2>/dev/null || break
            sleep 0.1
        done
        if kill -0 "$pid" 2>/dev/null; then
            log "runtime $pid did not stop after SIGTERM, killing it"
            kill -KILL "$pid" 2>/dev/null || true
        fi
    fi
    wait "$pid" 2>/dev/null || true
}

cleanup() {
    local rc=$? db
    set +e
    stop_server
    if [[ "${DBAPI_COMPAT_KEEP:-0}" == 1 ]]; then
        log "DBAPI_COMPAT_KEEP=1: keeping ${PG_DBS[*]:-} ${MY_DBS[*]:-} and $WORK_DIR"
    else
        for db in "${PG_DBS[@]}"; do pg_admin "DROP DATABASE IF EXISTS \"$db\" WITH (FORCE)" >/dev/null 2>&1 || log "could not drop PostgreSQL database $db"; done
        for db in "${MY_DBS[@]}"; do my_client "" -e "DROP DATABASE IF EXISTS \`$db\`" >/dev/null 2>&1 || log "could not drop MariaDB database $db"; done
        rm -rf "$WORK_DIR"
    fi
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# ------------------------------------------------------------ helpers

# url_tool MODE URL [DBNAME]: small URL surgery in python3.
#   with-db URL DB   the URL with its database (path) replaced by DB
#   my-parts URL     host, port, user, password, one a line
url_tool() {
    python3 - "$@" <<'PY'
import sys, urllib.parse as up
mode, url = sys.argv[1], sys.argv[2]
u = up.urlsplit(url)
if mode == "with-db":
    print(up.urlunsplit((u.scheme, u.netloc, "/" + up.quote(sys.argv[3]), u.query, u.fragment)))
elif mode == "my-parts":
    print(u.hostname or "127.0.0.1")
    print(u.port or 3306)
    print(up.unquote(u.username or "root"))
    print(up.unquote(u.password or ""))
PY
}

pg_admin() { "$PSQL" -X -q -v ON_ERROR_STOP=1 -d "$DBAPI_TEST_PG_URL" -c "$1"; }

# my_client DB [mariadb args...]: the client on DBAPI_TEST_MYSQL_URL's server.
my_client() {
    local db="$1" host port user pass
    shift
    { read -r host; read -r port; read -r user; read -r pass; } < <(url_tool my-parts "$DBAPI_TEST_MYSQL_URL")
    MYSQL_PWD="$pass" "$MYSQL_CLIENT" --protocol=TCP -h "$host" -P "$port" -u "$user" \
        --default-character-set=utf8mb4 ${db:+"$db"} "$@"
}

# create_database ENGINE NAME: creates and loads the database, prints its URL.
# Runs in a command substitution (no errexit there): every step is checked.
# The caller registers NAME for cleanup first.
create_database() {
    local engine="$1" name="$2" url
    case "$engine" in
        postgres)
            pg_admin "CREATE DATABASE \"$name\" ENCODING 'UTF8' LC_COLLATE 'C' TEMPLATE template0" >/dev/null || return 1
            url="$(url_tool with-db "$DBAPI_TEST_PG_URL" "$name")" || return 1
            "$PSQL" -X -q -v ON_ERROR_STOP=1 --single-transaction -d "$url" -f "$FIXTURES/postgres.sql" >/dev/null || return 1
            ;;
        mysql)
            my_client "" -e "CREATE DATABASE \`$name\` CHARACTER SET utf8mb4 COLLATE utf8mb4_bin" || return 1
            my_client "$name" <"$FIXTURES/mysql.sql" || return 1
            url="$(url_tool with-db "$DBAPI_TEST_MYSQL_URL" "$name")" || return 1
            ;;
        sqlite)
            local file="$WORK_DIR/$name.sqlite"
            python3 - "$file" "$FIXTURES/sqlite.sql" <<'PY' || return 1
import sqlite3, sys
con = sqlite3.connect(sys.argv[1])
con.execute("PRAGMA foreign_keys = ON")
with open(sys.argv[2], encoding="utf-8") as f:
    con.executescript(f.read())
con.commit()
con.close()
PY
            url="sqlite://$file"
            ;;
    esac
    printf '%s\n' "$url"
}

# is_ready URL: exit 0 when URL answers 200.
is_ready() {
    node -e 'fetch(process.argv[1], { signal: AbortSignal.timeout(2000) })
        .then((r) => process.exit(r.status === 200 ? 0 : 1), () => process.exit(1))' "$1"
}

# start_server DATABASE_URL LOG: starts the runtime on free ports, waits for
# /readyz, sets SERVER_PID and API_PORT.
start_server() {
    local url="$1" log="$2" admin_port timeout i
    timeout="${DBAPI_COMPAT_READY_TIMEOUT:-60}"
    for _ in 1 2 3; do
        API_PORT="$(dbapi_free_port)" || die "no free TCP port"
        admin_port="$(dbapi_free_port)" || die "no free TCP port"
        [[ "$API_PORT" != "$admin_port" ]] || continue
        : >"$log"
        NO_COLOR=1 DBAPI_LOG="${DBAPI_LOG:-info}" "$RUNTIME_BIN" serve --database-url "$url" \
            --config "$CONFIG_FILE" --listen "127.0.0.1:$API_PORT" --admin-listen "127.0.0.1:$admin_port" </dev/null >>"$log" 2>&1 &
        SERVER_PID=$!
        for ((i = 0; i < timeout * 5; i++)); do
            if ! kill -0 "$SERVER_PID" 2>/dev/null; then
                break
            fi
            if is_ready "http://127.0.0.1:$admin_port/readyz"; then
                return 0
            fi
            sleep 0.2
        done
        if kill -0 "$SERVER_PID" 2>/dev/null; then
            log "the runtime did not become ready within ${timeout}s (http://127.0.0.1:$admin_port/readyz); its log:"
            stop_server
            sed 's/^/    /' "$log" >&2
            return 1
        fi
        wait "$SERVER_PID" 2>/dev/null || true
        SERVER_PID=""
        if grep -qi 'address already in use' "$log"; then
            log "port taken meanwhile, retrying with other ports"
            continue
        fi
        log "the runtime exited during start-up; its log:"
        sed 's/^/    /' "$log" >&2
        return 1
    done
    log "could not find free ports for the runtime after 3 attempts"
    return 1
}

# tap_count FILE NAME: the "# NAME N" total from a TAP report.
tap_count() { sed -n "s/^# $2 \([0-9]*\)\$/\1/p" "$1" | tail -n 1; }

# ------------------------------------------------------------ the runs

# postgrest-js suites, and the supabase-js ones, run (and counted) apart.
mapfile -t TEST_FILES < <(cd "$COMPAT_DIR" && ls -1 -- *.test.mjs | grep -v '^supabase')
mapfile -t SUPABASE_FILES < <(cd "$COMPAT_DIR" && ls -1 -- supabase*.test.mjs)
((${#TEST_FILES[@]} > 0)) || die "no *.test.mjs files in $COMPAT_DIR"
((${#SUPABASE_FILES[@]} > 0)) || die "no supabase*.test.mjs files in $COMPAT_DIR"

summary=()
failed=0
suffix="$$_$(date +%s)_$RANDOM"

for engine in "${ENGINES[@]}"; do
    echo
    echo "==> compat: $engine"
    name="dbapi_compat_${engine}_${suffix}"
    server_log="$WORK_DIR/$engine-runtime.log"
    tap="$WORK_DIR/$engine.tap"
    supabase_tap="$WORK_DIR/$engine-supabase.tap"

    case "$engine" in
        postgres) PG_DBS+=("$name") ;;
        mysql) MY_DBS+=("$name") ;;
    esac
    if ! db_url="$(create_database "$engine" "$name")"; then
        log "$engine: could not create and load the test database"
        summary+=("$engine: ERROR (fixture)")
        failed=1
        continue
    fi
    if ! start_server "$db_url" "$server_log"; then
        summary+=("$engine: ERROR (runtime did not start)")
        failed=1
        continue
    fi

    base_url="http://127.0.0.1:$API_PORT"
    # node_tests TAP FILES...: node's test runner on FILES, spec to stdout.
    node_tests() {
        local tap_file="$1"
        shift
        (
            cd "$COMPAT_DIR"
            DBAPI_URL="$base_url$PATH_PREFIX" DBAPI_BASE_URL="$base_url" DBAPI_ENGINE="$engine" \
                DBAPI_API_KEY="$DBAPI_API_KEY" node --test --test-reporter=spec --test-reporter-destination=stdout \
                --test-reporter=tap --test-reporter-destination="$tap_file" \
                "$@"
        )
    }
    rc=0
    node_tests "$tap" "$@" "${TEST_FILES[@]}" || rc=$?
    py_log="$WORK_DIR/$engine-py.log"
    py_rc=0
    DBAPI_URL="$base_url$PATH_PREFIX" DBAPI_ENGINE="$engine" \
        "$VENV/bin/python" -m unittest discover -s "$PY_DIR" -p 'test_*.py' -v >"$py_log" 2>&1 || py_rc=$?
    cat "$py_log"
    supabase_rc=0
    node_tests "$supabase_tap" "$@" "${SUPABASE_FILES[@]}" || supabase_rc=$?
    stop_server

    pass="$(tap_count "$tap" pass)"
    fail="$(tap_count "$tap" fail)"
    skip="$(tap_count "$tap" skipped)"
    todo="$(tap_count "$tap" todo)"
    counts="${pass:-?} passed, ${fail:-?} failed, ${skip:-0} skipped"
    [[ "${todo:-0}" == 0 ]] || counts+=", $todo todo"
    py_ran="$(sed -n 's/^Ran \([0-9]*\) tests\? in .*/\1/p' "$py_log" | tail -n 1)"
    counts+="; postgrest-py: ${py_ran:-?} run, $( ((py_rc == 0)) && echo ok || echo FAILED)"
    ((py_rc == 0)) || rc=1
    sb_pass="$(tap_count "$supabase_tap" pass)"
    sb_fail="$(tap_count "$supabase_tap" fail)"
    sb_skip="$(tap_count "$supabase_tap" skipped)"
    counts+="; supabase-js: ${sb_pass:-?} passed, ${sb_fail:-?} failed, ${sb_skip:-0} skipped"
    ((supabase_rc == 0)) || rc=1
    if ((rc != 0)); then
        summary+=("$engine: FAILED ($counts)")
        failed=1
        log "$engine: last lines of the runtime log ($server_log):"
        tail -n 40 "$server_log" | sed 's/^/    /' >&2
    else
        summary+=("$engine: ok ($counts)")
    fi

    if [[ "${DBAPI_COMPAT_KEEP:-0}" != 1 ]]; then
        case "$engine" in
            postgres)
                if pg_admin "DROP DATABASE IF EXISTS \"$name\" WITH (FORCE)" >/dev/null; then PG_DBS=(); fi
                ;;
            mysql)
                if my_client "" -e "DROP DATABASE IF EXISTS \`$name\`"; then MY_DBS=(); fi
                ;;
            sqlite) rm -f "$WORK_DIR/$name.sqlite" ;;
        esac
    fi
done

line="$(printf '%s; ' "${summary[@]}")"
line="${line%; }"
echo
if ((failed)); then
    echo "compat: FAILED -- $line"
    exit 1
fi
echo "compat: OK -- $line"
