#!/usr/bin/env bash
# Installs what Starling's tests use on Debian 12, when run as root: the independent XMPP client library
# for interop tests (python3-slixmpp), PostgreSQL for the storage suite, clang/llvm/libbpf-dev to check the
# committed eBPF objects. Not root: prints what is missing; the tests that need it skip and say why.
set -euo pipefail
pkgs=(python3-slixmpp postgresql clang llvm libbpf-dev iproute2)
missing=()
for p in "${pkgs[@]}"; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
	exit 0
fi
if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null; then
	echo "deps: not installing ${missing[*]} (needs root on Debian); the tests that use them will skip" >&2
	exit 0
fi
echo "deps: installing ${missing[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
# Debian's server packages start their services on install; tests start their own instances.
printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d
chmod +x /usr/sbin/policy-rc.d
trap 'rm -f /usr/sbin/policy-rc.d' EXIT
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
