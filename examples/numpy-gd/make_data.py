"""Write the input data: three overlapping Gaussian classes in 8 dimensions, made by NumPy, offline.

The recipe has its own fixed seed: the data are the same bytes on every machine (so the data manifest is
stable), while the training that reads them is the part left unseeded.
"""

from pathlib import Path

import numpy as np

rng = np.random.default_rng(20240501)
centers = rng.normal(scale=1.6, size=(3, 8))
y = np.repeat(np.arange(3), 300)
x = centers[y] + rng.normal(size=(y.size, 8))
order = rng.permutation(y.size)
Path("data").mkdir(exist_ok=True)
np.save(Path("data") / "x.npy", x[order].astype(np.float64))
np.save(Path("data") / "y.npy", y[order].astype(np.int64))
print(f"wrote data/x.npy and data/y.npy ({y.size} points, 3 classes)")
