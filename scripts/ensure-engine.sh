#!/usr/bin/env bash
# Make sure a Docker engine answers: start Debian's dockerd when none does (CI, fresh machines).
# Idempotent; never touches an engine that already runs.
set -euo pipefail
log=${REPLAY_DOCKERD_LOG:-/var/log/replay-dockerd.log}

if docker info >/dev/null 2>&1; then
  exit 0
fi
if [ -n "${DOCKER_HOST:-}" ]; then
  echo "error: DOCKER_HOST=$DOCKER_HOST does not answer: start that engine, or unset DOCKER_HOST" >&2
  exit 3
fi
if [ "$(id -u)" != 0 ]; then
  echo "error: no Docker engine answers and starting one needs root: start Docker, then retry" >&2
  exit 3
fi
if ! command -v dockerd >/dev/null 2>&1; then
  echo "installing Debian's Docker engine (docker.io)..." >&2
  apt-get update -q >/dev/null
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q docker.io >/dev/null
fi
# A daemon killed earlier leaves its pidfile behind, and a new one refuses to start over it.
if [ -f /var/run/docker.pid ] && ! kill -0 "$(cat /var/run/docker.pid)" 2>/dev/null; then
  rm -f /var/run/docker.pid
fi
echo "starting dockerd (log: $log)..." >&2
nohup dockerd >"$log" 2>&1 &
for _ in $(seq 60); do
  if docker info >/dev/null 2>&1; then
    echo "Docker engine $(docker version --format '{{.Server.Version}}' 2>/dev/null) is up" >&2
    exit 0
  fi
  sleep 1
done
echo "error: dockerd did not answer within 60 s; see $log" >&2
tail -5 "$log" >&2 || true
exit 3
