"""A long training run, for Ctrl-C and --timeout: prints, then sleeps."""

import time

print("training for a long time...", flush=True)
time.sleep(600)
