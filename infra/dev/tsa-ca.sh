#!/usr/bin/env bash
# tsa-ca.sh DIR
# Makes a throwaway RFC 3161 time-stamping authority for development and tests in DIR:
#   ca.pem / ca.key     a test CA (P-256)
#   tsa.pem / tsa.key   the TSA's certificate, signed by the CA, with the critical extended key
#                       usage timeStamping that RFC 3161 section 2.3 requires
#   tsa.cnf             the [tsa] configuration OpenSSL's 'openssl ts -reply' reads. It has no
#                       'certs' line: the token carries only the TSA's own certificate (with
#                       extra certificates OpenSSL 3.0 writes the DER SET OF unsorted, which
#                       strict parsers such as rfc3161-client reject); verifiers hold the CA.
# infra/dev/tsa-server.py serves it over HTTP. Nothing here is fit for production: the keys are
# unencrypted test keys.
set -euo pipefail
dir=${1:?usage: tsa-ca.sh DIR}
mkdir -p "$dir"
dir=$(cd "$dir" && pwd)
cd "$dir"
[ -f tsa.pem ] && [ -f tsa.cnf ] && exit 0
openssl req -x509 -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout ca.key -out ca.pem \
  -days 3650 -subj "/CN=custody test TSA CA" \
  -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign" 2>/dev/null
openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout tsa.key -out tsa.csr \
  -subj "/CN=custody test TSA" 2>/dev/null
cat > tsa.ext <<'EXT'
basicConstraints=critical,CA:FALSE
keyUsage=critical,digitalSignature
extendedKeyUsage=critical,timeStamping
subjectKeyIdentifier=hash
authorityKeyIdentifier=keyid
EXT
openssl x509 -req -in tsa.csr -CA ca.pem -CAkey ca.key -CAcreateserial -out tsa.pem -days 3650 \
  -extfile tsa.ext 2>/dev/null
echo 01 > serial
cat > tsa.cnf <<CNF
[ tsa ]
default_tsa = custody_test_tsa

[ custody_test_tsa ]
dir = $dir
serial = \$dir/serial
crypto_device = builtin
signer_cert = \$dir/tsa.pem
signer_key = \$dir/tsa.key
signer_digest = sha256
default_policy = 1.3.6.1.4.1.55555.1.1
other_policies = 1.3.6.1.4.1.55555.1.2
digests = sha256, sha384, sha512
accuracy = secs:1
ordering = no
tsa_name = yes
ess_cert_id_chain = no
ess_cert_id_alg = sha256
CNF
rm -f tsa.csr tsa.ext
chmod 600 ca.key tsa.key
