#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Makes the certificates the TLS tests and benchmarks use, in DIR (never committed):
#   ca.pem ca.key          a test CA
#   a.pem a.key            server certificate for a.test, localhost and 127.0.0.1 (the default)
#   b.pem b.key            server certificate for b.test (chosen by SNI)
#   client.pem client.key  client certificate "CN=alice,O=Chopin tests", signed by the CA
#   rogue.pem rogue.key    client certificate "CN=mallory", self-signed (refused)
#   a.ocsp                 an OCSP response (DER) about a.pem, signed by the CA, to staple
# ECDSA P-256 keys (fast to make). Usage: tests/tls/mkcerts.sh DIR. Exits non-zero when
# the openssl command is missing or fails.
set -eu
dir=$1
mkdir -p "$dir"
cd "$dir"
command -v openssl >/dev/null
key() { openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$1" 2>/dev/null; }
key ca.key
openssl req -x509 -new -key ca.key -subj "/CN=Chopin test CA" -days 2 -out ca.pem \
  -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign" 2>/dev/null
signed() { # name, subject, extensions
  key "$1.key"
  openssl req -new -key "$1.key" -subj "$2" -out "$1.csr" 2>/dev/null
  printf '%s\n' "$3" > "$1.ext"
  openssl x509 -req -in "$1.csr" -CA ca.pem -CAkey ca.key -CAcreateserial -days 2 \
    -extfile "$1.ext" -out "$1.pem" 2>/dev/null
  rm -f "$1.csr" "$1.ext"
}
signed a "/CN=a.test" "subjectAltName=DNS:a.test,DNS:localhost,IP:127.0.0.1"
signed b "/CN=b.test" "subjectAltName=DNS:b.test"
signed client "/O=Chopin tests/CN=alice" "extendedKeyUsage=clientAuth"
key rogue.key
openssl req -x509 -new -key rogue.key -subj "/CN=mallory" -days 2 -out rogue.pem 2>/dev/null
# The CA's OCSP responder knows no certificate (empty index): its answer says "unknown",
# which is still a signed response a server can staple.
: > ocsp.idx
openssl ocsp -issuer ca.pem -cert a.pem -no_nonce -reqout ocsp.req 2>/dev/null
openssl ocsp -index ocsp.idx -rsigner ca.pem -rkey ca.key -CA ca.pem -reqin ocsp.req \
  -respout a.ocsp -ndays 1 >/dev/null 2>&1
rm -f ocsp.req ocsp.idx*
