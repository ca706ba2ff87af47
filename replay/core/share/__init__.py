"""Sharing capsules (targets, registries, signatures): the entry point is ``targets.resolve``."""
