"""A small PyTorch model trained on the CPU: an MLP with dropout, Adam, shuffled mini-batches.

It never sets a seed: PyTorch seeds its default generator from the operating system at start-up, so the
initial weights, the dropout masks and the DataLoader's shuffling differ on every run. Capture it with
`replay capture --run --auto-seed` and it repeats, unchanged.
"""

import json
from pathlib import Path

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

x = torch.from_numpy(np.load("data/x.npy"))
y = torch.from_numpy(np.load("data/y.npy"))
n_train = int(0.8 * len(y))
train = DataLoader(TensorDataset(x[:n_train], y[:n_train]), batch_size=64, shuffle=True)

model = nn.Sequential(nn.Linear(2, 32), nn.ReLU(), nn.Dropout(0.1), nn.Linear(32, 32), nn.ReLU(), nn.Linear(32, 3))
optimizer = torch.optim.Adam(model.parameters(), lr=0.01)
loss_fn = nn.CrossEntropyLoss()
for epoch in range(20):
    model.train()
    for xb, yb in train:
        optimizer.zero_grad()
        loss = loss_fn(model(xb), yb)
        loss.backward()
        optimizer.step()

model.eval()
with torch.no_grad():
    train_loss = float(loss_fn(model(x[:n_train]), y[:n_train]))
    probabilities = torch.softmax(model(x[n_train:]), dim=1)
accuracy = float((probabilities.argmax(dim=1) == y[n_train:]).double().mean())
out = Path("out")
out.mkdir(exist_ok=True)
# numpy's .npy, not torch.save: replay explains a .npy difference element by element.
np.save(out / "weights.npy", nn.utils.parameters_to_vector(model.parameters()).detach().numpy())
np.save(out / "predictions.npy", probabilities.numpy())
(out / "metrics.json").write_text(json.dumps({"accuracy": accuracy, "train_loss": train_loss}, indent=2) + "\n")
print(f"accuracy {accuracy:.4f}, train loss {train_loss:.4f}")
