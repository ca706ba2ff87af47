import sys

print("loading data/input.txt")
print("error: CUDA device not found", file=sys.stderr)
sys.exit(3)
