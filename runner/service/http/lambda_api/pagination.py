"""Lambda's Marker / MaxItems pagination, shared by the List operations.

The marker is opaque to clients (base64 here): it holds the key of the last item a page
showed, so the next page starts after that item even if items were added or removed before it
meanwhile (an index would skip or repeat them).
"""

from __future__ import annotations

import base64
import binascii
from typing import Callable, Mapping, Sequence, TypeVar

from runner.errors import InvalidParameter

T = TypeVar("T")
MAX_ITEMS = 50  # Lambda's page size when MaxItems is left out (and its ceiling)


def page(items: Sequence[T], query: Mapping[str, str], key: Callable[[T], str]
         ) -> tuple[list[T], str | None]:
    """(the items of this page, the NextMarker or None on the last page)."""
    raw_max = query.get("MaxItems")
    try:
        size = MAX_ITEMS if raw_max is None else int(raw_max)
    except ValueError:
        size = 0
    if not 1 <= size <= 10000:
        raise InvalidParameter("MaxItems", f"{raw_max!r} is not a number in 1..10000")
    size = min(size, MAX_ITEMS)
    start = 0
    marker = query.get("Marker")
    if marker:
        try:
            after = base64.urlsafe_b64decode(marker.encode()).decode()
        except (binascii.Error, UnicodeDecodeError, ValueError):
            raise InvalidParameter("Marker", "is not a marker this API returned; pass "
                                   "NextMarker from the previous page") from None
        keys = [key(i) for i in items]
        start = keys.index(after) + 1 if after in keys else sum(1 for k in keys if k <= after)
    shown = list(items[start:start + size])
    more = start + size < len(items)
    return shown, base64.urlsafe_b64encode(key(shown[-1]).encode()).decode() if more else None
