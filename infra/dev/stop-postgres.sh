#!/usr/bin/env bash
# Usage: stop-postgres.sh DIR [--purge]
#
# Stops the server that start-postgres.sh started for DIR. Nothing is killed by name: the PID
# is the one in DIR/data/postmaster.pid, and it is signalled only while /proc shows a postgres
# process whose command line names DIR/data. The server gets a fast shutdown (SIGINT: sessions
# are ended, nothing more is written) and up to 10 s, then SIGKILL (its children, whose parent
# is then gone, exit on their own). With --purge, the cluster's files under DIR are removed;
# DIR itself stays.
set -uo pipefail

state_dir=${1:?usage: $0 DIR [--purge]}
purge=no
[[ "${2:-}" == --purge ]] && purge=yes
if ! state_dir=$(cd "$state_dir" 2>/dev/null && pwd); then
  echo "[stop-postgres] $1 does not exist; nothing to stop" >&2
  exit 0
fi
data="$state_dir/data"

running() { # PID: exists and is not a zombie
  local state
  state=$(awk '{print $3}' "/proc/$1/stat" 2>/dev/null) || return 1
  [[ -n "$state" && "$state" != Z ]]
}
belongs_here() { # PID: the postgres server started on this directory's data
  [[ "$(cat "/proc/$1/comm" 2>/dev/null)" == postgres ]] || return 1
  tr '\0' ' ' <"/proc/$1/cmdline" 2>/dev/null | grep -qF -- "$data"
}

pid=$(head -n 1 "$data/postmaster.pid" 2>/dev/null || true)
if [[ "$pid" =~ ^[0-9]+$ ]] && running "$pid" && belongs_here "$pid"; then
  kill -INT "$pid" 2>/dev/null || true
  for _ in $(seq 100); do
    running "$pid" || break
    sleep 0.1
  done
  if running "$pid"; then
    echo "[stop-postgres] server ($pid) did not exit within 10 s of SIGINT; sending SIGKILL" >&2
    kill -KILL "$pid" 2>/dev/null || true
  fi
  echo "[stop-postgres] stopped the server ($pid)" >&2
else
  echo "[stop-postgres] no server of $data is running" >&2
fi

if [[ "$purge" == yes ]]; then
  for name in data server.log initdb.log env.sh; do
    rm -rf "${state_dir:?}/$name"
  done
fi
exit 0
