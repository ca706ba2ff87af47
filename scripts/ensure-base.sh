#!/usr/bin/env bash
# Make sure the offline base image exists: build it with `replay base build` (debootstrap) when missing.
set -euo pipefail
replay=${REPLAY:-.venv/bin/replay}
python=${REPLAY_BASE_PYTHON:-3.11}
tag=${REPLAY_BASE:-replay-base/python:${python}-bookworm}

if docker image inspect "$tag" >/dev/null 2>&1; then
  exit 0
fi
if ! command -v debootstrap >/dev/null 2>&1 && [ ! -x /usr/sbin/debootstrap ]; then
  if [ "$(id -u)" != 0 ]; then
    echo "error: the base image $tag is missing and debootstrap is not installed: apt-get install debootstrap" >&2
    exit 3
  fi
  echo "installing debootstrap..." >&2
  apt-get update -q >/dev/null
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q debootstrap >/dev/null
fi
echo "building the offline base image $tag (about a minute)..." >&2
"$replay" base build --python "$python" --tag "$tag"
