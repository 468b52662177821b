#!/usr/bin/env bash
# Installs what the tests need, only when missing (idempotent). Debian, as root.
set -euo pipefail
need=()
have() { command -v "$1" >/dev/null 2>&1; }
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
if [ ${#need[@]} -gt 0 ]; then
  echo "install-test-deps: installing ${need[*]}"
  if [ "$(id -u)" != 0 ]; then echo "install-test-deps: need root to install ${need[*]}" >&2; exit 1; fi
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi
echo "install-test-deps: all present"
