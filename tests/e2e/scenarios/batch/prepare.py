"""Two data sets: data/a (shared by most captures) and data/b."""

from pathlib import Path

for name, text in (("a", "1 2 3\n"), ("b", "4 5 6\n")):
    Path(f"data/{name}").mkdir(parents=True, exist_ok=True)
    Path(f"data/{name}/input.txt").write_text(text)
