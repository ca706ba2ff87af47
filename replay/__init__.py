"""replay: capture a finished ML training run into a pinned image, and verify it later byte for byte."""

__version__ = "0.1.0"
