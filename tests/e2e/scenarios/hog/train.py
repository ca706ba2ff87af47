"""A run that needs more memory than verify allows it: the kill must be reported, not mistaken for a crash."""

chunks = [bytearray(32 * 1024 * 1024) for _ in range(32)]  # 1 GiB, touched page by page
print(f"allocated {len(chunks)} chunks")
