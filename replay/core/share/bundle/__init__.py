"""The bundle file: ``pack.pack`` writes one, ``read.open_bundle`` checks and opens one."""
