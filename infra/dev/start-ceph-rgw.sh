#!/usr/bin/env bash
# Usage: start-ceph-rgw.sh DIR PORT
#
# Brings up a disposable, single-node Ceph cluster for development and tests: one monitor, one
# OSD and one radosgw (the S3 gateway), all bound to 127.0.0.1 and nothing else. Every file the
# cluster writes stays under DIR. The daemons come from Debian bookworm's Ceph 16.2 (Pacific)
# packages; when a tool is missing and we run as root, the packages are installed with apt-get,
# otherwise the script prints the apt-get command to run and fails.
#
# No systemd: each daemon is started directly, forks, and writes a pid file; the PIDs are
# recorded in DIR/pids so that stop-ceph-rgw.sh can stop exactly these processes.
#
# Output: progress and errors on stderr; stdout carries only `export NAME=value` lines (also
# saved as DIR/env.sh), so a shell can do
#     eval "$(infra/dev/start-ceph-rgw.sh "$(mktemp -d)" 7480)"
# Stop with: infra/dev/stop-ceph-rgw.sh DIR [--purge]
#
# Settings (environment):
#   CEPH_OBJECTSTORE    bluestore (default; data in a sparse file DIR/osd.0/block.file, ~5 s to
#                       start, OSD ~150 MB resident) or memstore (data in RAM, ~1.5 s to start,
#                       memory grows with the data stored)
#   CEPH_STORE_GB       size the OSD advertises, default 8; writes stall near 95% full
#   S3_ACCESS_KEY, S3_SECRET_KEY   the S3 user's keys (throwaway defaults below)
#   RGW_TLS_PORT        also serve HTTPS on this loopback port with a self-signed certificate,
#                       exported as S3_TLS_CA_BUNDLE
#   CEPH_START_TIMEOUT  seconds allowed for each stage to come up, default 120
set -euo pipefail

usage="usage: $0 DIR PORT"
state_dir=${1:?$usage}
s3_port=${2:?$usage}
objectstore=${CEPH_OBJECTSTORE:-bluestore}
store_gb=${CEPH_STORE_GB:-8}
access_key=${S3_ACCESS_KEY:-BODYCAMTESTACCESSKEY}
secret_key=${S3_SECRET_KEY:-bodycamtestsecretkey0123456789abcdefghij}
tls_port=${RGW_TLS_PORT:-}
stage_timeout=${CEPH_START_TIMEOUT:-120}

say() { printf '[start-ceph-rgw %3ss] %s\n' "$SECONDS" "$*" >&2; }
fail() { say "ERROR: $*"; exit 1; }

case "$objectstore" in
  bluestore | memstore) ;;
  *) fail "CEPH_OBJECTSTORE is '$objectstore'; it must be bluestore or memstore" ;;
esac
[[ "$s3_port" =~ ^[0-9]+$ ]] || fail "PORT must be a number, not '$s3_port'"

# ---- packages ------------------------------------------------------------------------------
packages=(ceph-mon ceph-osd radosgw ceph-common ceph-base curl uuid-runtime python3 openssl)
need_install=no
for tool in ceph-mon ceph-osd radosgw ceph radosgw-admin monmaptool ceph-authtool curl uuidgen python3; do
  command -v "$tool" >/dev/null 2>&1 || need_install=yes
done
if [[ -n "$tls_port" ]] && ! command -v openssl >/dev/null 2>&1; then need_install=yes; fi
if [[ "$need_install" == yes ]]; then
  if [[ "$EUID" != 0 ]]; then
    fail "Ceph is not installed and this is not root; run as root: apt-get update && apt-get install -y --no-install-recommends ${packages[*]}"
  fi
  say "installing ${packages[*]} with apt-get"
  apt-get update >&2
  DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "${packages[@]}" >&2
fi

# ---- state directory -----------------------------------------------------------------------
mkdir -p "$state_dir"
state_dir=$(cd "$state_dir" && pwd)
conf="$state_dir/ceph.conf"
pid_list="$state_dir/pids"

is_ceph_daemon() { # PID -> true while it is a ceph-mon, ceph-osd or radosgw process
  case "$(cat "/proc/$1/comm" 2>/dev/null)" in
    ceph-mon | ceph-osd | radosgw) return 0 ;;
    *) return 1 ;;
  esac
}
if [[ -f "$pid_list" ]]; then
  while read -r daemon pid; do
    if is_ceph_daemon "$pid"; then
      fail "$daemon (pid $pid) of an earlier start still runs; run stop-ceph-rgw.sh $state_dir first"
    fi
  done <"$pid_list"
fi
port_taken() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
for port in "$s3_port" $tls_port; do
  if port_taken "$port"; then fail "127.0.0.1:$port is already in use"; fi
done

generated=(mon.a osd.0 run log pids ceph.conf keyring monmap env.sh tls.crt tls.key tls.pem)
for name in "${generated[@]}"; do rm -rf "${state_dir:?}/$name"; done
mkdir -p "$state_dir/mon.a" "$state_dir/osd.0" "$state_dir/run" "$state_dir/log"
: >"$pid_list"

mon_port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
fsid=$(uuidgen)

frontends="beast endpoint=127.0.0.1:$s3_port tcp_nodelay=1"
if [[ -n "$tls_port" ]]; then
  openssl req -x509 -newkey rsa:2048 -nodes -days 30 -subj /CN=127.0.0.1 \
    -addext "subjectAltName=IP:127.0.0.1,DNS:localhost" \
    -keyout "$state_dir/tls.key" -out "$state_dir/tls.crt" 2>/dev/null
  cat "$state_dir/tls.crt" "$state_dir/tls.key" >"$state_dir/tls.pem"
  frontends+=" ssl_endpoint=127.0.0.1:$tls_port ssl_certificate=$state_dir/tls.pem"
fi

store_bytes=$((store_gb * 1024 * 1024 * 1024))
cat >"$conf" <<EOF
[global]
fsid = $fsid
mon host = [v2:127.0.0.1:$mon_port]
public addr = 127.0.0.1
ms bind ipv4 = true
ms bind ipv6 = false
# Authentication is off: the cluster listens on loopback only and is thrown away after use.
auth cluster required = none
auth service required = none
auth client required = none
keyring = $state_dir/keyring
run dir = $state_dir/run
admin socket = $state_dir/run/\$name.asok
pid file = $state_dir/run/\$name.pid
log file = $state_dir/log/\$name.log
log to stderr = false
ms async op threads = 2
# One OSD holds every pool: single replica, one placement group per pool.
osd pool default size = 1
osd pool default min size = 1
osd pool default pg num = 1
osd pool default pgp num = 1
osd pool default pg autoscale mode = off
osd crush chooseleaf type = 0
mon allow pool size one = true
mon allow pool delete = true
mon warn on pool no redundancy = false
mon warn on insecure global id reclaim allowed = false
mon max pg per osd = 1000
mon data avail warn = 2
mon data avail crit = 1

[mon]
mon data = $state_dir/mon.\$id
mon cluster log file = $state_dir/log/cluster.log
# The default one-second proposal interval delays every osdmap change (the OSD booting, each
# pool radosgw creates); with these values the cluster is up in about a second instead of ~13.
paxos propose interval = 0.05
paxos min wait = 0.01

[osd]
osd data = $state_dir/osd.\$id
osd objectstore = $objectstore
memstore device bytes = $store_bytes
bluestore block path = $state_dir/osd.\$id/block.file
bluestore block create = true
bluestore block size = $store_bytes
bluestore fsck on mount = false
osd memory target = 1073741824
osd op num shards = 1
osd op num threads per shard = 2

[client.rgw]
# radosgw defaults to cephx and to a 'secure' monitor connection, which needs a cephx session
# key; with authentication off it would wait 300 s for its configuration unless both are set.
auth client required = none
ms mon client mode = crc
rgw frontends = $frontends
rgw thread pool size = 32
rgw enable usage log = false
# Lifecycle threads slow SIGTERM down to ~10 s and Object Lock does not need them.
rgw enable lc threads = false
EOF
export CEPH_CONF="$conf"
ceph_cli=(ceph -c "$conf" --connect-timeout 10)

started_ok=no
cleanup_on_failure() {
  # If the start did not finish, stop what it started: PIDs from DIR/pids or DIR/run/*.pid, and
  # only those still ceph daemons whose command line names this run's ceph.conf.
  local status=$? pid
  [[ "$started_ok" == yes ]] && return 0
  say "start failed (exit $status); stopping what was started (logs: $state_dir/log)"
  sleep 0.5 # a daemon that has just forked may not have written its pid file yet
  for pid in $({ awk '{print $2}' "$pid_list" 2>/dev/null; cat "$state_dir"/run/*.pid 2>/dev/null; echo; } |
    grep -E '^[0-9]+$' | sort -u); do
    is_ceph_daemon "$pid" || continue
    if tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -qF -- "$conf"; then
      kill -KILL "$pid" 2>/dev/null || true
    fi
  done
  rm -f "$pid_list"
  exit "$status"
}
trap cleanup_on_failure EXIT

wait_until() { # DESCRIPTION COMMAND...: poll every 0.2 s until COMMAND succeeds or the stage times out
  local what=$1 deadline=$((SECONDS + stage_timeout))
  shift
  until "$@" >/dev/null 2>&1; do
    ((SECONDS < deadline)) || fail "gave up after ${stage_timeout}s waiting for $what"
    sleep 0.2
  done
}
remember_pid() { # DAEMON PIDFILE
  wait_until "$2 to be written" test -s "$2"
  printf '%s %s\n' "$1" "$(cat "$2")" >>"$pid_list"
}

# ---- monitor -------------------------------------------------------------------------------
say "monitor mon.a on 127.0.0.1:$mon_port, fsid $fsid"
ceph-authtool --create-keyring "$state_dir/keyring" --gen-key -n mon. --cap mon 'allow *' >/dev/null
ceph-authtool "$state_dir/keyring" --gen-key -n client.admin \
  --cap mon 'allow *' --cap osd 'allow *' --cap mgr 'allow *' >/dev/null
monmaptool --create --clobber --fsid "$fsid" --addv a "[v2:127.0.0.1:$mon_port]" "$state_dir/monmap" >/dev/null
ceph-mon -c "$conf" -i a --mkfs --monmap "$state_dir/monmap" --keyring "$state_dir/keyring"
ceph-mon -c "$conf" -i a
remember_pid mon.a "$state_dir/run/mon.a.pid"
wait_until "the monitor to form a quorum" "${ceph_cli[@]}" mon stat

# ---- OSD -----------------------------------------------------------------------------------
osd_uuid=$(uuidgen)
osd_id=$("${ceph_cli[@]}" osd new "$osd_uuid")
[[ "$osd_id" == 0 ]] || fail "the monitor assigned osd id $osd_id, expected 0"
say "OSD osd.0 ($objectstore, $store_gb GB)"
if ! ceph-osd -c "$conf" -i 0 --mkfs --osd-uuid "$osd_uuid" >"$state_dir/log/osd.0.mkfs.out" 2>&1; then
  cat "$state_dir/log/osd.0.mkfs.out" >&2
  fail "ceph-osd --mkfs failed"
fi
ceph-osd -c "$conf" -i 0 2>>"$state_dir/log/osd.0.stderr"
remember_pid osd.0 "$state_dir/run/osd.0.pid"
osd_is_up() { "${ceph_cli[@]}" osd dump 2>/dev/null | grep -q '^osd\.0 up'; }
wait_until "osd.0 to be up" osd_is_up

# ---- radosgw -------------------------------------------------------------------------------
say "radosgw on 127.0.0.1:$s3_port${tls_port:+, HTTPS on 127.0.0.1:$tls_port}"
# radosgw forks only once it has reached the cluster; these two options bound that wait.
radosgw -c "$conf" -n client.rgw --rgw-init-timeout "$stage_timeout" --client-mount-timeout "$stage_timeout"
remember_pid client.rgw "$state_dir/run/client.rgw.pid"
s3_answers() { curl -sf -o /dev/null "http://127.0.0.1:$s3_port/"; }
wait_until "radosgw to answer HTTP on 127.0.0.1:$s3_port" s3_answers

say "creating the S3 user"
radosgw-admin -c "$conf" user create --uid=bodycam --display-name="bodycam test" \
  --access-key="$access_key" --secret-key="$secret_key" >"$state_dir/log/user-create.json"

{
  echo "export S3_ENDPOINT_URL=http://127.0.0.1:$s3_port"
  echo "export AWS_ENDPOINT_URL_S3=http://127.0.0.1:$s3_port"
  if [[ -n "$tls_port" ]]; then
    echo "export S3_TLS_ENDPOINT_URL=https://127.0.0.1:$tls_port"
    echo "export S3_TLS_CA_BUNDLE=$state_dir/tls.crt"
  fi
  echo "export AWS_ACCESS_KEY_ID=$access_key"
  echo "export AWS_SECRET_ACCESS_KEY=$secret_key"
  echo "export AWS_DEFAULT_REGION=us-east-1"
  echo "export CEPH_CONF=$conf"
} >"$state_dir/env.sh"
started_ok=yes
say "ready after ${SECONDS}s; daemons: $(tr '\n' ' ' <"$pid_list")"
cat "$state_dir/env.sh"
