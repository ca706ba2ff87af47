"""Verify many capsules at once, on any backend: the entry point is ``run.run_batch`` over a ``plan.Plan``."""
