"""Replay a capsule and give a verdict: the entry point is ``pipeline.verify``."""
