#!/usr/bin/env bash
# Usage: start-postgres.sh DIR [PORT]
#
# Brings up a disposable PostgreSQL server for development and tests: a new cluster (initdb)
# in DIR/data, listening on 127.0.0.1:PORT and on a unix socket in DIR, nothing else. It uses
# Debian's postgresql packages (the programs live in /usr/lib/postgresql/<version>/bin, which
# is not on PATH); when they are missing and we run as root they are installed with apt-get,
# otherwise the script prints the apt-get command to run and fails. PORT defaults to a free one.
#
# PostgreSQL refuses to run as root: as root the server runs as the unprivileged user
# PG_RUN_AS (default `postgres`, created by Debian's package) through runuser, and DIR is
# given to that user (so DIR must be reachable by it: not under a 0700 directory of root's,
# such as pytest's own temporary directory).
#
# Authentication is `trust` for local and loopback connections: a throwaway server for tests,
# never a deployment (see infra/sql/ and the README's PostgreSQL section for that). The
# superuser is `postgres`.
#
# Output: progress and errors on stderr; stdout carries only `export NAME=value` lines (also
# saved as DIR/env.sh), so a shell can do
#     eval "$(infra/dev/start-postgres.sh "$(mktemp -d)")"
# Stop with: infra/dev/stop-postgres.sh DIR [--purge]
#
# Settings (environment):
#   PG_BINDIR          where initdb and pg_ctl are (default: the newest /usr/lib/postgresql/*/bin)
#   PG_RUN_AS          the user the server runs as when this script runs as root (default postgres)
#   PG_FSYNC           on (default) or off: off is faster and loses data on a machine crash
#   PG_START_TIMEOUT   seconds allowed for the server to accept connections, default 60
set -euo pipefail

usage="usage: $0 DIR [PORT]"
state_dir=${1:?$usage}
port=${2:-}
run_as=${PG_RUN_AS:-postgres}
fsync=${PG_FSYNC:-on}
start_timeout=${PG_START_TIMEOUT:-60}

say() { printf '[start-postgres %3ss] %s\n' "$SECONDS" "$*" >&2; }
fail() { say "ERROR: $*"; exit 1; }

case "$fsync" in on | off) ;; *) fail "PG_FSYNC is '$fsync'; it must be on or off" ;; esac
if [[ -z "$port" ]]; then
  port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
fi
[[ "$port" =~ ^[0-9]+$ ]] || fail "PORT must be a number, not '$port'"

# ---- programs ------------------------------------------------------------------------------
find_bindir() {
  if [[ -n "${PG_BINDIR:-}" ]]; then
    echo "$PG_BINDIR"
    return
  fi
  local newest
  newest=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1 || true)
  if [[ -n "$newest" && -x "$newest/initdb" && -x "$newest/pg_ctl" ]]; then
    echo "$newest"
  elif command -v initdb >/dev/null 2>&1 && command -v pg_ctl >/dev/null 2>&1; then
    dirname "$(command -v pg_ctl)"
  fi
}
bindir=$(find_bindir)
if [[ -z "$bindir" || ! -x "$bindir/initdb" || ! -x "$bindir/pg_ctl" ]]; then
  if [[ -n "${PG_BINDIR:-}" ]]; then
    fail "PG_BINDIR=$PG_BINDIR has no initdb and pg_ctl"
  fi
  if [[ "$EUID" != 0 ]]; then
    fail "PostgreSQL is not installed and this is not root; run as root: apt-get update && apt-get install -y --no-install-recommends postgresql"
  fi
  say "installing postgresql with apt-get"
  apt-get update >&2
  DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends postgresql >&2
  bindir=$(find_bindir)
  [[ -n "$bindir" ]] || fail "postgresql was installed but no initdb/pg_ctl was found under /usr/lib/postgresql"
fi
say "using $bindir ($("$bindir/pg_ctl" --version))"

# ---- who runs the server -------------------------------------------------------------------
mkdir -p "$state_dir"
state_dir=$(cd "$state_dir" && pwd)
as_server() { "$@"; }
if [[ "$EUID" == 0 ]]; then
  id "$run_as" >/dev/null 2>&1 || fail "the user '$run_as' (PG_RUN_AS) does not exist; PostgreSQL cannot run as root"
  chown "$run_as": "$state_dir"
  chmod 0700 "$state_dir"
  as_server() { runuser -u "$run_as" -- "$@"; }
  as_server test -w "$state_dir" ||
    fail "$state_dir is not reachable by '$run_as' (is it under a directory only root may enter?)"
fi

data="$state_dir/data"
if [[ -f "$data/postmaster.pid" ]]; then
  old=$(head -n 1 "$data/postmaster.pid")
  if [[ -d "/proc/$old" && "$(cat "/proc/$old/comm" 2>/dev/null)" == postgres ]]; then
    fail "a server (pid $old) of an earlier start still runs in $data; run stop-postgres.sh $state_dir first"
  fi
fi

# ---- cluster -------------------------------------------------------------------------------
if [[ ! -f "$data/PG_VERSION" ]]; then
  say "initdb $data"
  as_server "$bindir/initdb" -D "$data" -U postgres --auth=trust -E UTF8 --no-locale --no-instructions >"$state_dir/initdb.log" 2>&1 ||
    { tail -n 20 "$state_dir/initdb.log" >&2; fail "initdb failed (log: $state_dir/initdb.log)"; }
fi

say "starting the server on 127.0.0.1:$port (socket in $state_dir)"
server_options="-c listen_addresses=127.0.0.1 -p $port -c unix_socket_directories=$state_dir -c fsync=$fsync"
server_options+=" -c max_connections=100 -c shared_buffers=64MB"
if ! as_server "$bindir/pg_ctl" -D "$data" -l "$state_dir/server.log" -o "$server_options" -w -t "$start_timeout" start >&2; then
  tail -n 20 "$state_dir/server.log" >&2 || true
  fail "the server did not start within $start_timeout s (log: $state_dir/server.log)"
fi
pid=$(head -n 1 "$data/postmaster.pid")
say "server running (pid $pid)"

{
  echo "export PGHOST=127.0.0.1"
  echo "export PGPORT=$port"
  echo "export PGUSER=postgres"
  echo "export PGDATABASE=postgres"
  echo "export PG_BINDIR=$bindir"
  echo "export PG_STATE_DIR=$state_dir"
  echo "export PG_SERVER_PID=$pid"
  echo "export CUSTODY_TEST_PG_URL=postgresql+psycopg://postgres@127.0.0.1:$port/postgres"
} | tee "$state_dir/env.sh"
