#!/usr/bin/env bash
# A small private CA, a server certificate and one client certificate per Pi, with openssl.
#   bash scripts/make_certs.sh DIR SERVER_NAME_OR_IP PI_NAME [PI_NAME ...]
# e.g. bash scripts/make_certs.sh certs 192.168.1.10 rpi01 rpi02 rpi03
# Writes DIR/ca.crt (give to every side), DIR/ca.key (keep offline), DIR/server.{crt,key},
# DIR/<pi>.{crt,key}. A Pi's certificate names it (CN and DNS SAN = the unit's sh_id).
set -euo pipefail
[ $# -ge 3 ] || { sed -n 2,6p "$0" >&2; exit 2; }
dir=$1 server=$2; shift 2
mkdir -p "$dir" && cd "$dir"
umask 077
days=825
key() { openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$1" 2>/dev/null; }

if [ ! -f ca.key ]; then
    key ca.key
    openssl req -x509 -new -key ca.key -out ca.crt -days 3650 -subj "/CN=whc private CA" \
        -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign"
fi

sign() {  # sign NAME SAN EXTENDED_KEY_USAGE
    key "$1.key"
    openssl req -new -key "$1.key" -out "$1.csr" -subj "/CN=$1"
    printf 'subjectAltName=%s\nextendedKeyUsage=%s\nbasicConstraints=CA:FALSE\n' "$2" "$3" > "$1.ext"
    openssl x509 -req -in "$1.csr" -CA ca.crt -CAkey ca.key -CAcreateserial -out "$1.crt" -days "$days" \
        -extfile "$1.ext" 2>/dev/null
    rm -f "$1.csr" "$1.ext"
}

if [[ $server =~ ^[0-9.]+$ || $server == *:* ]]; then san="IP:$server"; else san="DNS:$server"; fi
sign server "$san" serverAuth
for pi in "$@"; do
    sign "$pi" "DNS:$pi" clientAuth
done
chmod 644 ca.crt ./*.crt
echo "certificates in $(pwd): ca.crt, server.crt/.key, $(printf '%s.crt/.key ' "$@")"
