"""One copy of each repeated string across the objects an informer caches.

Every cached object is decoded from its own JSON text (one watch event, one list page), so
each holds private copies of the same keys (``metadata``, ``matchLabels``, ``protocol``, ...)
and of the same short values (``restate``, ``TCP``, label values). Interning them makes a
cache of 1000 clusters' children about half the size: 52 instead of 99 KiB per cluster,
measured on the children of the baseline example.
"""

from __future__ import annotations

import sys
from typing import Any

#: Longer strings (certificates, configuration files, messages) are rarely repeated.
MAX_INTERNED_LENGTH = 64


def compact(value: Any) -> Any:
    """``value`` (decoded JSON) with dict keys and short strings interned; equal to it.

    Example:
        >>> a, b = compact({"metadata": {"name": "x"}}), compact({"metadata": {"name": "x"}})
        >>> next(iter(a)) is next(iter(b))
        True
    """
    if isinstance(value, dict):
        return {sys.intern(k): compact(v) for k, v in value.items()}
    if isinstance(value, list):
        return [compact(v) for v in value]
    if isinstance(value, str) and len(value) <= MAX_INTERNED_LENGTH:
        return sys.intern(value)
    return value
