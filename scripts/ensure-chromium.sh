#!/usr/bin/env bash
# Make sure Debian's headless-capable Chromium is installed (the HTML report test renders the page in it).
# Idempotent: does nothing when `chromium` is on PATH.
set -euo pipefail
if command -v chromium >/dev/null 2>&1; then
  exit 0
fi
if [ "$(id -u)" != 0 ]; then
  echo "error: chromium is missing and installing it needs root: apt-get install chromium, then retry" >&2
  exit 3
fi
echo "installing Debian's chromium..." >&2
export DEBIAN_FRONTEND=noninteractive
apt-get update -q >/dev/null
apt-get install -y -q --no-install-recommends chromium fonts-dejavu-core >/dev/null
command -v chromium >/dev/null
