#!/usr/bin/env bash
# Make sure Debian's Slurm (slurmctld, slurmd, the client commands) and munge are installed, for the Slurm
# tests' one-node cluster (tests/slurm/cluster.py starts the daemons by hand). Idempotent: installs only
# what is missing, and starts nothing (Debian's packages would try to start services through systemd,
# which this kind of machine lacks; policy-rc.d keeps them from trying).
set -euo pipefail
need=()
for cmd in slurmctld:slurmctld slurmd:slurmd sbatch:slurm-client munged:munge; do
  command -v "${cmd%%:*}" >/dev/null 2>&1 || need+=("${cmd##*:}")
done
if [ ${#need[@]} -eq 0 ]; then
  exit 0
fi
if [ "$(id -u)" != 0 ]; then
  echo "error: Slurm is not installed (${need[*]}) and installing it needs root: apt-get install ${need[*]}" >&2
  exit 3
fi
echo "installing ${need[*]} (Debian's Slurm and munge)..." >&2
policy=/usr/sbin/policy-rc.d
made_policy=0
if [ ! -e "$policy" ]; then
  printf '#!/bin/sh\nexit 101\n' >"$policy" && chmod 0755 "$policy" && made_policy=1
fi
trap '[ "$made_policy" = 1 ] && rm -f "$policy"' EXIT
apt-get update -q >/dev/null
DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${need[@]}" munge >/dev/null
for cmd in slurmctld slurmd sbatch squeue scontrol scancel sinfo munged; do
  command -v "$cmd" >/dev/null 2>&1 || { echo "error: $cmd is still missing after apt-get install" >&2; exit 3; }
done
