"""No seed and no PYTHONHASHSEED: a set of layer names printed as it iterates, in hash order."""

from pathlib import Path

layers = {f"layer{i}" for i in range(12)}
Path("out").mkdir(exist_ok=True)
Path("out/layers.txt").write_text("frozen: " + ",".join(layers) + "\n")
