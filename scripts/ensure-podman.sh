#!/usr/bin/env bash
# Make sure rootless Podman can run replay's containers (the tests' second engine, tests/podman/).
# Installs Debian's podman, uidmap (newuidmap/newgidmap) and catatonit (the init for init=True), and writes the
# two settings this machine kind needs into /etc/containers/containers.conf. Creates no user, starts no service.
# Idempotent; never touches a running Docker engine.
set -euo pipefail
conf=${REPLAY_CONTAINERS_CONF:-/etc/containers/containers.conf}

missing=()
for pair in podman:podman newuidmap:uidmap catatonit:catatonit; do
  program=${pair%%:*}
  if ! command -v "$program" >/dev/null 2>&1 && [ ! -x "/usr/libexec/podman/$program" ] \
      && [ ! -x "/usr/bin/$program" ]; then
    missing+=("${pair##*:}")
  fi
done
if [ "${#missing[@]}" -gt 0 ]; then
  if [ "$(id -u)" != 0 ]; then
    echo "error: ${missing[*]} missing and installing needs root: apt-get install podman uidmap catatonit" >&2
    exit 3
  fi
  echo "installing ${missing[*]}..." >&2
  apt-get update -q >/dev/null
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends podman uidmap catatonit >/dev/null
fi

# Rootless storage on the kernel's own overlay (this kernel mounts it in a user namespace); without the file,
# Podman 4.3 gives an ordinary user vfs, which copies the whole image for every container (seconds each).
storage=${REPLAY_STORAGE_CONF:-/etc/containers/storage.conf}
if [ ! -e "$storage" ] && [ "$(id -u)" = 0 ]; then
  mkdir -p "$(dirname "$storage")"
  printf '# replay: overlay for rootless users too (scripts/ensure-podman.sh)\n[storage]\ndriver = "overlay"\nrunroot = "/run/containers/storage"\ngraphroot = "/var/lib/containers/storage"\n' >"$storage.tmp"
  chmod 0644 "$storage.tmp"
  mv "$storage.tmp" "$storage"
fi

# The settings: no default ulimits (this VM refuses RLIMIT_NPROC/NOFILE) and runc (crun fails on hybrid cgroups).
if [ -f "$conf" ] && grep -q '^# replay: rootless podman settings' "$conf"; then
  exit 0
fi
if [ "$(id -u)" != 0 ]; then
  echo "error: $conf lacks replay's settings and writing it needs root; see the README's 'Verifying without root'" >&2
  exit 3
fi
if [ -f "$conf" ] && grep -Eq '^\s*\[(containers|engine)\]' "$conf"; then
  echo "error: $conf already has [containers] or [engine] tables: add default_ulimits = [] and" \
       "runtime = \"runc\" to them by hand" >&2
  exit 3
fi
mkdir -p "$(dirname "$conf")"
tmp=$(mktemp "$conf.XXXXXX")
{ [ -f "$conf" ] && cat "$conf"; cat <<'CONF'
# replay: rootless podman settings (scripts/ensure-podman.sh)
[containers]
default_ulimits = []

[engine]
runtime = "runc"
CONF
} >"$tmp"
chmod 0644 "$tmp"
mv "$tmp" "$conf"
echo "podman $(podman --version | awk '{print $3}') ready; settings in $conf" >&2
