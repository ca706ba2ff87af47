"""Write the input data: scikit-learn's bundled digits (no download), as one .npz file."""

from pathlib import Path

import numpy as np
from sklearn.datasets import load_digits

digits = load_digits()
Path("data").mkdir(exist_ok=True)
# Fixed arrays, no metadata: the same bytes on every machine, so the data manifest is stable.
np.savez(Path("data") / "digits.npz", x=digits.data.astype(np.float64), y=digits.target.astype(np.int64))
print(f"wrote data/digits.npz ({digits.data.shape[0]} images)")
