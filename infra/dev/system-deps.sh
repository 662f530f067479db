#!/usr/bin/env bash
# system-deps.sh NEED...
# Makes sure the Debian/Ubuntu packages behind each NEED are installed:
#   venv    python3 with venv and pip          ffmpeg  ffmpeg and ffprobe
#   b3sum   the BLAKE3 reference command       ceph    Ceph RGW (a real S3 server, for tests)
#   softhsm SoftHSM2, a software PKCS#11 token (tests of the ledger key in an HSM)
#   openssh ssh-keygen and ssh-agent (event signatures, checked by ssh-keygen -Y verify)
#   terraform   HashiCorp's terraform, expected on PATH (this machine image ships it) (renders infra/terraform's
#               bucket policy offline, to compare it with infra/s3-policies)
#   openssl the openssl command (the test TSA of infra/dev/tsa-server.py, 'openssl ts -verify')
#   golang  Go and Debian's golang.org/x/mod (sumdb/tlog, sumdb/note), for the tests' independent
#           tlog-tiles checker, built offline in GOPATH mode from /usr/share/gocode
#   stock-python  Debian's python3 with python3-cryptography (a package's README.txt checks)
#   postgresql  Debian's PostgreSQL server (initdb and pg_ctl in /usr/lib/postgresql/<ver>/bin,
#               not on PATH) and psql, for the throwaway test server of start-postgres.sh
# Running as root, missing packages are installed with apt-get. Otherwise the exact command to
# run is printed and the script exits 1.
set -euo pipefail

packages=()
for need in "$@"; do
  case "$need" in
    venv)   python3 -c 'import ensurepip, venv' 2>/dev/null || packages+=(python3-venv python3-pip) ;;
    ffmpeg) { command -v ffmpeg && command -v ffprobe; } >/dev/null 2>&1 || packages+=(ffmpeg) ;;
    b3sum)  command -v b3sum >/dev/null 2>&1 || packages+=(b3sum) ;;
    openssl) command -v openssl >/dev/null 2>&1 || packages+=(openssl) ;;
    golang) { command -v go >/dev/null 2>&1 && [ -d /usr/share/gocode/src/golang.org/x/mod/sumdb/tlog ]; } ||
              packages+=(golang-go golang-golang-x-mod-dev) ;;
    stock-python) /usr/bin/python3 -I -c 'import cryptography' 2>/dev/null || packages+=(python3 python3-cryptography) ;;   # README.txt's checks, run as a recipient would
    chromium) command -v chromium >/dev/null 2>&1 || packages+=(chromium) ;;   # headless, renders report.html in tests
    ceph)   for c in ceph-mon ceph-osd radosgw radosgw-admin monmaptool ceph-authtool curl uuidgen; do
              command -v "$c" >/dev/null 2>&1 || { packages+=(ceph-mon ceph-osd radosgw ceph-common ceph-base curl uuid-runtime); break; }
            done ;;
    postgresql)
            bindir=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1 || true)
            { [ -n "$bindir" ] && [ -x "$bindir/initdb" ] && [ -x "$bindir/pg_ctl" ] && [ -x "$bindir/psql" ]; } ||
              packages+=(postgresql) ;;
    softhsm) command -v softhsm2-util >/dev/null 2>&1 || packages+=(softhsm2) ;;
    openssh) { command -v ssh-keygen && command -v ssh-agent; } >/dev/null 2>&1 || packages+=(openssh-client) ;;
    terraform) command -v terraform >/dev/null 2>&1 || {
                 echo "system-deps.sh: terraform is not installed and no registry this project uses ships it;" >&2
                 echo "  install HashiCorp's terraform on PATH (the machine image used by CI has it)." >&2
                 exit 1; } ;;
    *) echo "system-deps.sh: unknown need '$need'" >&2; exit 2 ;;
  esac
done

[ ${#packages[@]} -eq 0 ] && exit 0
command="apt-get install -y --no-install-recommends ${packages[*]}"
if [ "$(id -u)" != 0 ]; then
  echo "Missing system packages. Run, as root:" >&2
  echo "    apt-get update && $command" >&2
  exit 1
fi
echo "installing: ${packages[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq >&2
apt-get install -y -qq --no-install-recommends "${packages[@]}" >&2
