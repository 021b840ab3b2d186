#!/bin/sh
# make_certs.sh DIR -- a throwaway PKI for the TLS tests, made with the
# openssl command line in DIR (a test's temp dir; nothing outside it):
#
#   ca.pem ca.key            the CA the tests trust (redis.tls.ca_file)
#   other-ca.pem other-ca.key  a CA nobody trusts ("unknown CA")
#   server.pem server.key    signed by ca: DNS:redis.test, DNS:localhost,
#                            IP:127.0.0.1 -- what a well-made server has
#   named.pem named.key      signed by ca: DNS:redis.test only (verified by
#                            server_name, never by the address)
#   localhost.pem .key       signed by ca: DNS:localhost only (verified by
#                            the host name as configured, not 127.0.0.1)
#   wrongname.pem .key       signed by ca: DNS:other.test only ("name mismatch")
#   expired.pem expired.key  signed by ca, like server.pem, expired yesterday
#   untrusted.pem .key       signed by other-ca, like server.pem
#   client.pem client.key    signed by ca, clientAuth (tls-auth-clients yes)
#   client-other.pem .key    signed by other-ca, clientAuth (refused by a server)
#
# EC P-256 keys: fast to make (the whole set in well under a second). Used
# by tests/support/tls_fixture.c and tests/support/tlstest.py alike.
set -eu
dir=$1
cd "$dir"

# A minimal config: no system openssl.cnf defaults (its v3_ca extensions
# would clash with the ones given here).
cat >openssl.cnf <<'EOF'
[req]
distinguished_name = dn
prompt = no
[dn]
CN = unused
EOF
export OPENSSL_CONF="$dir/openssl.cnf"

serial=1000
key() {
    openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$1.key" 2>/dev/null
}

ca() { # ca NAME
    key "$1"
    openssl req -x509 -new -key "$1.key" -days 3 -subj "/CN=expiry-bridge test $1" \
        -addext "basicConstraints=critical,CA:TRUE" \
        -addext "keyUsage=critical,keyCertSign,cRLSign" -out "$1.pem" 2>/dev/null
}

# The validity of a certificate valid for N days from now, or -- N = -1 --
# one that expired yesterday: OpenSSL >= 3.4 refuses `-days -1` and takes
# explicit dates instead; 3.0 has no such options and takes -days -1.
validity() {
    if [ "$1" -ge 0 ]; then
        echo "-days $1"
    elif openssl x509 -help 2>&1 | grep -q -- -not_after; then
        echo "-not_before $(date -u -d '2 days ago' +%Y%m%d%H%M%SZ)" \
            "-not_after $(date -u -d '1 day ago' +%Y%m%d%H%M%SZ)"
    else
        echo "-days -1"
    fi
}

leaf() { # leaf NAME CA SAN DAYS USAGE -- DAYS may be -1: expired
    key "$1"
    openssl req -new -key "$1.key" -subj "/CN=$1" -out "$1.csr" 2>/dev/null
    {
        echo "basicConstraints=CA:FALSE"
        echo "keyUsage=critical,digitalSignature"
        echo "extendedKeyUsage=$5"
        [ -z "$3" ] || echo "subjectAltName=$3"
    } >"$1.ext"
    serial=$((serial + 1))
    openssl x509 -req -in "$1.csr" -CA "$2.pem" -CAkey "$2.key" -set_serial "$serial" \
        $(validity "$4") -extfile "$1.ext" -out "$1.pem" 2>/dev/null
    rm -f "$1.csr" "$1.ext"
}

ca ca
ca other-ca
leaf server ca "DNS:redis.test,DNS:localhost,IP:127.0.0.1" 2 serverAuth
leaf named ca "DNS:redis.test" 2 serverAuth
leaf localhost ca "DNS:localhost" 2 serverAuth
leaf wrongname ca "DNS:other.test" 2 serverAuth
leaf expired ca "DNS:redis.test,DNS:localhost,IP:127.0.0.1" -1 serverAuth
leaf untrusted other-ca "DNS:redis.test,DNS:localhost,IP:127.0.0.1" 2 serverAuth
leaf client ca "" 2 clientAuth
leaf client-other other-ca "" 2 clientAuth
# redis-server runs as the same user; keys stay private to it.
chmod 600 ./*.key
