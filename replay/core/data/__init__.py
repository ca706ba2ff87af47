"""Data manifests: ``hashing.hash_paths`` records one at capture, ``hashing.check_data`` checks local data against it."""
