"""A small, real training run: logistic regression on scikit-learn's digits, seeded through REPLAY_SEED."""

import argparse
import json
import os
import pickle
from pathlib import Path

import numpy as np
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import train_test_split

parser = argparse.ArgumentParser()
parser.add_argument("--seed", type=int, default=int(os.environ.get("REPLAY_SEED", "0")))
parser.add_argument("--data", default="data/digits.npz")
parser.add_argument("--out", default="out")
args = parser.parse_args()

data = np.load(args.data)
x_train, x_test, y_train, y_test = train_test_split(
    data["x"] / 16.0, data["y"], test_size=0.25, random_state=args.seed, stratify=data["y"]
)
model = LogisticRegression(max_iter=500, random_state=args.seed)
model.fit(x_train, y_train)
predictions = model.predict_proba(x_test)
accuracy = float((predictions.argmax(axis=1) == y_test).mean())

out = Path(args.out)
out.mkdir(parents=True, exist_ok=True)
with open(out / "model.pkl", "wb") as handle:
    pickle.dump(model.coef_, handle, protocol=4)
np.save(out / "predictions.npy", predictions)
(out / "metrics.json").write_text(json.dumps({"accuracy": accuracy, "test": {"n": int(len(y_test))}}, indent=2) + "\n")
print(f"accuracy {accuracy:.4f} on {len(y_test)} test digits (seed {args.seed})")
