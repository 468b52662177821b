#!/usr/bin/env bash
# Installs what the tests need, only when missing (idempotent). Debian, as root.
set -euo pipefail
need=()
have() { command -v "$1" >/dev/null 2>&1; }
# The Go toolchain is not a Debian package here (Debian's golang-go is too old for go.mod):
# the machine provides Go >= 1.26 at /usr/local/go; say so clearly if it is missing.
export PATH="$PATH:/usr/local/go/bin"
if ! have go; then
  echo "install-test-deps: Go >= 1.26 is needed (expected at /usr/local/go/bin/go); install it from go.dev or your image" >&2
  exit 1
fi
have gcc          || need+=(gcc libc6-dev)   # the race detector needs cgo
have git          || need+=(git)
[ -f /etc/ssl/certs/ca-certificates.crt ] || need+=(ca-certificates)
have wg           || need+=(wireguard-tools)
have wireguard-go || need+=(wireguard-go)
have ip           || need+=(iproute2)
have ping         || need+=(iputils-ping)
have nft          || need+=(nftables)
have openvpn      || need+=(openvpn)
have openssl      || need+=(openssl)
have sysctl       || need+=(procps)
have conntrack    || need+=(conntrack)
have curl         || need+=(curl)
have patch        || need+=(patch)  # scripts/check-third-party.sh
if [ ${#need[@]} -gt 0 ]; then
  echo "install-test-deps: installing ${need[*]}"
  if [ "$(id -u)" != 0 ]; then echo "install-test-deps: need root to install ${need[*]}" >&2; exit 1; fi
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi
echo "install-test-deps: all present"
