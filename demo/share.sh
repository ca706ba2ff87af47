#!/usr/bin/env bash
# The reviewer walk-through of README "Sharing a capsule", run for real on one machine: the author captures
# on a base of their own, packs with data and signs; then both the capsule image and that base are removed
# from the engine, and the bundle alone is verified from an empty folder. Then the same through a registry
# (Debian's docker-registry on 127.0.0.1, stopped at the end). Leaves no image behind.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/.." && pwd)
example="$repo/examples/digits-sklearn"   # the training run the walk-through shares
replay="$repo/.venv/bin/replay"
venv="$here/.train-venv"
work="$here/work-share"
base=${REPLAY_BASE:-replay-base/python:3.11-bookworm}
step() { printf '\n\033[1m$ %s\033[0m\n' "$*"; }

if ! cmp -s "$example/requirements.txt" "$venv/requirements.txt" 2>/dev/null; then
  rm -rf "$venv"; python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet -r "$example/requirements.txt"; cp "$example/requirements.txt" "$venv/requirements.txt"
fi
bash "$repo/scripts/ensure-tools.sh"
rm -rf "$work"; mkdir -p "$work/author" "$work/reviewer"
cd "$work/author"
cp "$example/train.py" "$example/make_data.py" "$example/pyproject.toml" .; cp "$here/gitignore" .gitignore
git init -q; git -c user.name=demo -c user.email=demo@example.invalid add -A
git -c user.name=demo -c user.email=demo@example.invalid commit -q -m "digits demo"
"$venv/bin/python" make_data.py
export PATH="$venv/bin:$PATH"

# A base that exists only here (the shared base plus one layer of its own), so that removing it later
# leaves the engine without the capsule's base.
own_base="replay-demo/base-$$:1"
cid=$(docker create "$base" sh -c "echo $own_base > /demo-base")
docker start -a "$cid" >/dev/null; base_id=$(docker commit "$cid" "$own_base"); docker rm "$cid" >/dev/null
# The base and every image built on it (the package stage, the capsule image), children first: only this
# script's images descend from its own base.
family() {
  "$repo/.venv/bin/python" - "$1" <<'PY'
import sys, docker
api = docker.from_env().api
parents = {i["Id"]: i.get("ParentId", "") for i in api.images(all=True)}
fam = [sys.argv[1]]
for c in fam:
    fam += [k for k, p in parents.items() if p == c and k not in fam]
print("\n".join(reversed(fam)))
PY
}
cleanup() {
  [ -n "${registry_pid:-}" ] && kill "$registry_pid" 2>/dev/null || true
  for id in $(family "$base_id") ${image:-}; do docker rmi -f "$id" >/dev/null 2>&1 || true; done
}
trap cleanup EXIT

echo "== the author"
"$replay" capture --run --name digits --base "$own_base" -- python train.py >/dev/null 2>capture.log || { cat capture.log; exit 1; }
ssh-keygen -q -t ed25519 -N "" -C alice -f alice_key
echo "alice@example.org namespaces=\"replay-bundle\" $(cat alice_key.pub)" > "$work/reviewer/allowed_signers"
step "replay pack .replay/digits -o digits.replay --with-data --sign alice_key"
"$replay" pack .replay/digits -o digits.replay --with-data --sign alice_key 2>/dev/null
image=$(python3 -c "import json; print(json.load(open('.replay/digits/replay.json'))['image']['id'])")
mv digits.replay "$work/reviewer/"

# The reviewer's engine: neither the capsule image nor its base.
for id in $(family "$base_id"); do docker rmi -f "$id" >/dev/null 2>&1 || true; done  # parents go with their last child
echo; echo "== the reviewer (an empty folder: the bundle and the allowed signers only)"
cd "$work/reviewer"
step "ls"; ls
step "docker image inspect ${image:7:12} $own_base"
docker image inspect "$image" "$own_base" >/dev/null 2>&1 || echo "Error: No such image (neither)"
step "replay show digits.replay"; "$replay" show digits.replay
step "replay verify digits.replay --allowed-signers allowed_signers"
"$replay" verify digits.replay --allowed-signers allowed_signers 2>/dev/null

echo; echo "== the same through a registry"
bash "$repo/scripts/ensure-tools.sh"
port=$(python3 -c "import socket; s=socket.socket(); s.bind(('127.0.0.1',0)); print(s.getsockname()[1])")
printf 'version: 0.1\nlog:\n  level: error\nstorage:\n  filesystem:\n    rootdirectory: %s\nhttp:\n  addr: 127.0.0.1:%s\n' \
  "$work/registry" "$port" > "$work/registry.yml"
/usr/bin/docker-registry serve "$work/registry.yml" >/dev/null 2>&1 & registry_pid=$!
for _ in $(seq 50); do curl -fs "http://127.0.0.1:$port/v2/" >/dev/null && break; sleep 0.2; done
cd "$work/author"
step "replay push .replay/digits 127.0.0.1:$port/team/digits"
"$replay" push .replay/digits "127.0.0.1:$port/team/digits" 2>/dev/null | tee push.txt
ref=$(sed -n 's/^verify with: replay verify //p' push.txt)
docker rmi -f "$image" >/dev/null
cd "$work/reviewer"; rm -rf data; cp -r "$work/author/data" .   # the reviewer's copy of the data
step "replay verify $ref"
"$replay" verify "$ref" 2>/dev/null
