#!/usr/bin/env bash
# Checks that third_party/wireguard-go is exactly upstream golang.zx2c4.com/wireguard at the
# version go.mod requires plus third_party/wireguard-go.patch: nothing else may creep in.
set -euo pipefail
cd "$(dirname "$0")/.."
GO=${GO:-go}
ver=$($GO list -m -f '{{.Version}}' golang.zx2c4.com/wireguard)
src=$(GOFLAGS=-mod=mod $GO mod download -json "golang.zx2c4.com/wireguard@$ver" | sed -n 's/^\t"Dir": "\(.*\)",$/\1/p')
if [ -z "$src" ]; then
	echo "check-third-party: cannot download golang.zx2c4.com/wireguard@$ver" >&2
	exit 1
fi
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
cp -r "$src" "$tmp/wireguard-go"
chmod -R u+w "$tmp/wireguard-go"
patch -s -p1 -d "$tmp/wireguard-go" < third_party/wireguard-go.patch
if ! diff -r "$tmp/wireguard-go" third_party/wireguard-go > "$tmp/diff"; then
	echo "check-third-party: third_party/wireguard-go differs from upstream $ver + third_party/wireguard-go.patch:" >&2
	cat "$tmp/diff" >&2
	echo "regenerate the patch (third_party/README.md) or undo the change" >&2
	exit 1
fi
echo "check-third-party: third_party/wireguard-go = upstream $ver + wireguard-go.patch"
