#!/usr/bin/env bash
# Regenerate the eBPF objects and bindings in bpf/ and fail if they differ
# from the committed ones, so throttle.c and throttle_bpfel.{go,o} never drift.
#
# The committed objects were built with Debian 12's clang-14 (1:14.0.6-12, pulled in by
# the clang 1:14.0-55.7~deb12u1 package) and libbpf-dev 1:1.1.2-0+deb12u1 headers on amd64;
# another clang produces different bytes, so run this on Debian 12.
set -euo pipefail
cd "$(git rev-parse --show-toplevel)"

if ! command -v clang >/dev/null || ! command -v llvm-strip >/dev/null || [ ! -f /usr/include/bpf/bpf_helpers.h ]; then
	apt-get update
	apt-get install -y --no-install-recommends clang llvm libbpf-dev
fi

clang --version | head -n 1
go generate ./bpf/...
if ! git diff --exit-code -- bpf/; then
	echo "bpf/: generated files differ from the committed ones; run 'go generate ./bpf/...' with Debian 12's clang and commit" >&2
	exit 1
fi
if [ -n "$(git status --porcelain -- bpf/)" ]; then
	git status --porcelain -- bpf/ >&2
	echo "bpf/: generation left untracked files" >&2
	exit 1
fi
