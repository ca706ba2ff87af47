"""Write the input data: three interleaved spirals in the plane, made by PyTorch on the CPU, offline.

The recipe has its own generator with a fixed seed, so the data are the same bytes on every machine; the
training that reads them is the part left unseeded.
"""

import math
from pathlib import Path

import numpy as np
import torch

gen = torch.Generator().manual_seed(20240501)
per_class, classes = 200, 3
t = torch.linspace(0.0, 1.0, per_class, dtype=torch.float64).repeat(classes)
y = torch.arange(classes).repeat_interleave(per_class)
angle = t * 4.0 + y.double() * (2 * math.pi / classes) + 0.2 * torch.randn(t.shape, generator=gen, dtype=torch.float64)
x = torch.stack([t * torch.cos(angle), t * torch.sin(angle)], dim=1)
order = torch.randperm(len(y), generator=gen)
Path("data").mkdir(exist_ok=True)
np.save(Path("data") / "x.npy", x[order].float().numpy())
np.save(Path("data") / "y.npy", y[order].numpy().astype(np.int64))
print(f"wrote data/x.npy and data/y.npy ({len(y)} points, {classes} spirals)")
