#!/usr/bin/env bash
# The demo: a small real training run (examples/digits-sklearn: scikit-learn on the digits data) in its own
# git repo and virtualenv, captured into a capsule and verified in a fresh container. Run it with `make demo`.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/.." && pwd)
example="$repo/examples/digits-sklearn"
replay="$repo/.venv/bin/replay"
work="$here/work"
venv="$here/.train-venv"   # the researcher's environment; kept between runs

step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }

step "1. a research project: git repo, virtualenv with numpy + scikit-learn, data"
if ! cmp -s "$example/requirements.txt" "$venv/requirements.txt" 2>/dev/null; then
  rm -rf "$venv"
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet -r "$example/requirements.txt"
  cp "$example/requirements.txt" "$venv/requirements.txt"
fi
rm -rf "$work"
mkdir -p "$work"
cp "$example/train.py" "$example/make_data.py" "$example/pyproject.toml" "$work/"
cp "$here/gitignore" "$work/.gitignore"
cd "$work"
git init -q
git -c user.name=demo -c user.email=demo@example.invalid add -A
git -c user.name=demo -c user.email=demo@example.invalid commit -q -m "digits demo"
"$venv/bin/python" make_data.py

step "2. replay capture --run --verify: train here with the seed, snapshot the run into a capsule, replay it once"
export PATH="$venv/bin:$PATH"   # the active virtualenv is the one captured
"$replay" capture --run --verify --name digits -- python train.py

step "3. replay show"
"$replay" show .replay/digits

step "4. replay verify: replay in a fresh, isolated container and diff every output"
"$replay" verify .replay/digits --markdown verify.md --report verify.json
echo
echo "capsule: $work/.replay/digits   reports: $work/verify.md, $work/verify.json"
