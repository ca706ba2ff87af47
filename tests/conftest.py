"""What every test shares: signals as a terminal's foreground job has them.

A shell starts a background job (``make test &``, a CI step run with ``&``, ``nohup``) with SIGINT ignored,
and every child inherits that: a ``replay`` a test then interrupts with SIGINT, as Ctrl-C would, would never
see it. Python's own handler here is reset to the default in every program this process starts.
"""

from __future__ import annotations

import signal

signal.signal(signal.SIGINT, signal.default_int_handler)
