#!/bin/bash
# The README's "Running on a Slurm cluster" session, run for real: a one-node test cluster in DIR (default
# /tmp/sess), a project with a seeded and an unseeded script, both captured, verified as one Slurm array.
# Needs the Docker engine, the base image (make base) and Slurm (scripts/ensure-slurm.sh); removes its images.
set -u
S=${1:-/tmp/sess}
REPO=$(cd "$(dirname "$0")/.." && pwd)
rm -rf $S; mkdir -p $S/proj/data
R=$REPO/.venv/bin/replay
$REPO/.venv/bin/python $REPO/tests/slurm/cluster.py $S/cluster > $S/cluster.out 2>&1 &
CL=$!
for i in $(seq 120); do grep -q export $S/cluster.out && break; sleep 0.5; done
cat $S/cluster.out
export SLURM_CONF=$S/cluster/slurm.conf
cd $S/proj
cat > train.py <<'PY'
import json, os, random
random.seed(int(os.environ.get("PYTHONHASHSEED", "0")))
os.makedirs("out", exist_ok=True)
with open("out/metrics.json", "w") as f:
    json.dump({"accuracy": random.random()}, f)
PY
cat > noisy.py <<'PY'
import json, os, random
os.makedirs("out", exist_ok=True)
with open("out/metrics.json", "w") as f:
    json.dump({"accuracy": random.SystemRandom().random()}, f)
PY
echo x > data/input.txt
printf '.venv/\nout/\n.replay/\n' > .gitignore
git init -q && git add -A && git -c user.name=s -c user.email=s@example.invalid commit -qm session
python3 -m venv .venv
export PATH=$S/proj/.venv/bin:$PATH VIRTUAL_ENV=$S/proj/.venv
echo '$ sinfo'; sinfo
$R capture --name seeded --base replay-base/python:3.11-bookworm --run --data data --metrics out/metrics.json --seed 7 -- python train.py > $S/cap1.log 2>&1; echo "capture seeded rc=$?"
$R capture --name noisy --base replay-base/python:3.11-bookworm --run --data data --metrics out/metrics.json -- python noisy.py > $S/cap2.log 2>&1; echo "capture noisy rc=$?"
echo '$ replay verify .replay --backend slurm --partition replaytest --jobs 2 --time 10 --report batch.json'
COLUMNS=100 $R verify .replay --backend slurm --partition replaytest --jobs 2 --time 10 --report batch.json; rc=$?
echo '$ echo $?'; echo $rc
echo '$ ls .replay/.replay-work/batch-*/'; ls .replay/.replay-work/batch-*/
for n in seeded noisy; do docker rmi -f $(python3 -c "import json;print(json.load(open('.replay/$n/replay.json'))['image']['id'])") >/dev/null; done
for n in seeded noisy; do docker rmi $(python3 -c "import json;print(json.load(open('.replay/$n/replay.json'))['image']['environment_id'])") >/dev/null 2>&1; done
kill -TERM $CL; wait $CL
