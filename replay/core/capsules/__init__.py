"""Looking at capsules you have: the entry point is ``diff.diff_manifests`` (`replay diff`)."""
