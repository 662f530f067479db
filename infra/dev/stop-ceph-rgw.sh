#!/usr/bin/env bash
# Usage: stop-ceph-rgw.sh DIR [--purge]
#
# Stops the Ceph daemons that start-ceph-rgw.sh started for DIR, in the order radosgw, OSD,
# monitor. Nothing is ever killed by name: the candidate PIDs are those recorded in DIR/pids and
# those in pid files under DIR/run (which covers a start that failed half way), and a PID is
# signalled only while /proc shows it is a ceph-mon, ceph-osd or radosgw process whose command
# line names DIR/ceph.conf.
#
# Each daemon gets SIGTERM and up to 10 s to exit, then SIGKILL. With --purge it gets SIGKILL
# straight away (its state is being thrown away) and the cluster's files under DIR are removed;
# DIR itself stays.
set -uo pipefail

state_dir=${1:?usage: $0 DIR [--purge]}
purge=no
[[ "${2:-}" == --purge ]] && purge=yes
if ! state_dir=$(cd "$state_dir" 2>/dev/null && pwd); then
  echo "[stop-ceph-rgw] $1 does not exist; nothing to stop" >&2
  exit 0
fi
conf="$state_dir/ceph.conf"
signal=TERM
[[ "$purge" == yes ]] && signal=KILL

running() { # PID: exists and is not a zombie (the daemons are reparented to PID 1, which reaps them lazily)
  local state
  state=$(awk '{print $3}' "/proc/$1/stat" 2>/dev/null) || return 1
  [[ -n "$state" && "$state" != Z ]]
}
belongs_here() { # PID: a ceph daemon started with this directory's ceph.conf
  case "$(cat "/proc/$1/comm" 2>/dev/null)" in
    ceph-mon | ceph-osd | radosgw) ;;
    *) return 1 ;;
  esac
  tr '\0' ' ' <"/proc/$1/cmdline" 2>/dev/null | grep -qF -- "$conf"
}

recorded=$({ [[ -f "$state_dir/pids" ]] && awk '{print $2}' "$state_dir/pids"; cat "$state_dir"/run/*.pid 2>/dev/null; echo; } |
  grep -E '^[0-9]+$' | sort -u)

for kind in radosgw ceph-osd ceph-mon; do
  for pid in $recorded; do
    [[ "$(cat "/proc/$pid/comm" 2>/dev/null)" == "$kind" ]] || continue
    running "$pid" && belongs_here "$pid" || continue
    kill -"$signal" "$pid" 2>/dev/null || true
    for _ in $(seq 100); do
      running "$pid" || break
      sleep 0.1
    done
    if running "$pid"; then
      echo "[stop-ceph-rgw] $kind ($pid) did not exit within 10 s of SIG$signal; sending SIGKILL" >&2
      kill -KILL "$pid" 2>/dev/null || true
    fi
    echo "[stop-ceph-rgw] stopped $kind ($pid)" >&2
  done
done

rm -f "$state_dir/pids"
if [[ "$purge" == yes ]]; then
  for name in mon.a osd.0 run log ceph.conf keyring monmap env.sh tls.crt tls.key tls.pem; do
    rm -rf "${state_dir:?}/$name"
  done
fi
exit 0
