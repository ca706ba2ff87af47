"""A NumPy-only model trained by gradient descent: a one-hidden-layer network, mini-batch SGD.

Like much research code it never sets a seed: the weights start from `np.random.default_rng()` and the
batches are shuffled with `np.random.permutation`, so every run gives other weights. Capture it with
`replay capture --run --auto-seed` and it repeats, unchanged.
"""

import json
from pathlib import Path

import numpy as np

x = np.load("data/x.npy")
y = np.load("data/y.npy")
n_train = int(0.8 * len(y))
x_train, y_train, x_test, y_test = x[:n_train], y[:n_train], x[n_train:], y[n_train:]
classes, hidden, rate, epochs, batch = 3, 16, 0.1, 40, 32

rng = np.random.default_rng()  # no seed: the weights differ on every run
w1 = rng.normal(scale=np.sqrt(2 / x.shape[1]), size=(x.shape[1], hidden))
b1 = np.zeros(hidden)
w2 = rng.normal(scale=np.sqrt(1 / hidden), size=(hidden, classes))
b2 = np.zeros(classes)


def forward(inputs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    h = np.maximum(inputs @ w1 + b1, 0.0)
    logits = h @ w2 + b2
    logits -= logits.max(axis=1, keepdims=True)
    p = np.exp(logits)
    return h, p / p.sum(axis=1, keepdims=True)


for epoch in range(epochs):
    order = np.random.permutation(n_train)  # the legacy global generator, unseeded too
    for start in range(0, n_train, batch):
        idx = order[start:start + batch]
        xb, yb = x_train[idx], y_train[idx]
        h, p = forward(xb)
        grad = p.copy()
        grad[np.arange(len(yb)), yb] -= 1.0
        grad /= len(yb)
        dh = (grad @ w2.T) * (h > 0)
        w2 -= rate * (h.T @ grad)
        b2 -= rate * grad.sum(axis=0)
        w1 -= rate * (xb.T @ dh)
        b1 -= rate * dh.sum(axis=0)

_, p_train = forward(x_train)
_, p_test = forward(x_test)
loss = float(-np.log(p_train[np.arange(n_train), y_train]).mean())
accuracy = float((p_test.argmax(axis=1) == y_test).mean())
out = Path("out")
out.mkdir(exist_ok=True)
np.save(out / "params.npy", np.concatenate([w1.ravel(), b1, w2.ravel(), b2]))
np.save(out / "predictions.npy", p_test)
(out / "metrics.json").write_text(json.dumps({"accuracy": accuracy, "train_loss": loss}, indent=2) + "\n")
print(f"accuracy {accuracy:.4f}, train loss {loss:.4f}")
