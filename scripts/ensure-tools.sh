#!/usr/bin/env bash
# System tools the sharing tests and benchmarks use, installed from Debian when missing (CI, fresh machines):
# ssh-keygen (openssh-client) signs and checks bundles, zstd is the benchmark's reference compressor, and
# docker-registry is the registry the end-to-end tests start on 127.0.0.1 (and stop by PID).
# Idempotent. Installing docker-registry starts no service (Debian's policy-rc.d, or no init system).
set -euo pipefail
missing=()
command -v ssh-keygen >/dev/null 2>&1 || missing+=(openssh-client)
command -v zstd >/dev/null 2>&1 || missing+=(zstd)
[ -x /usr/bin/docker-registry ] || missing+=(docker-registry)
[ ${#missing[@]} -eq 0 ] && exit 0
if [ "$(id -u)" != 0 ]; then
  echo "error: missing ${missing[*]} and installing needs root: apt-get install ${missing[*]}" >&2
  exit 3
fi
echo "installing ${missing[*]}..." >&2
apt-get update -q >/dev/null
DEBIAN_FRONTEND=noninteractive apt-get install -y -q "${missing[@]}" >/dev/null
