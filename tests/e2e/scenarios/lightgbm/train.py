"""A small LightGBM regression: deterministic, single-threaded, its model and metrics written to out/."""

import json
import os

import lightgbm as lgb
import numpy as np

rng = np.random.default_rng(7)
x = rng.normal(size=(500, 5))
y = x @ np.array([1.0, -2.0, 0.5, 0.0, 3.0]) + rng.normal(scale=0.1, size=500)
params = {"objective": "regression", "num_threads": 1, "deterministic": True, "seed": 7, "verbose": -1}
model = lgb.train(params, lgb.Dataset(x, y), num_boost_round=20)
os.makedirs("out", exist_ok=True)
model.save_model("out/model.txt")
mse = float(np.mean((model.predict(x) - y) ** 2))
with open("out/metrics.json", "w") as f:
    json.dump({"mse": round(mse, 10)}, f)
