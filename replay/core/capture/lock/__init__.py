"""The capture's Python environment, locked with hashes: the entry point is ``environment.lock_environment``."""
