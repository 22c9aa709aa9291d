"""Fault injection for crash tests: exit abruptly at a named point.

``RESTATE_OP_CRASH_AT=<point>`` makes the process exit with ``os._exit`` (no clean-up, no
Lease release, like a kill -9) the first time the operator reaches that point. Off by
default; when off, ``fault_point`` is a dictionary-free string comparison.
"""

from __future__ import annotations

import os
import sys

CRASH_EXIT_CODE = 86
_CRASH_AT = os.environ.get("RESTATE_OP_CRASH_AT") or None


def fault_point(name: str) -> None:
    """Crash here if the fault-injection switch names this point."""
    if _CRASH_AT is not None and (name == _CRASH_AT or name.startswith(_CRASH_AT + "-")):
        sys.stderr.write(f"restate-op: injected crash at {name}\n")
        sys.stderr.flush()
        os._exit(CRASH_EXIT_CODE)
