"""Capture a finished run into a capsule: the entry point is ``pipeline.capture``."""
