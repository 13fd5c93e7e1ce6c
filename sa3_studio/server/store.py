"""A small least-recently-used store bounded by entry count and bytes (no Ray).

The ingress keeps uploaded clips in one (so a repeated take need not upload again), and each
engine replica keeps encoded source latents in one (so it need not encode again).
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Hashable
from typing import Generic, TypeVar

V = TypeVar("V")


class LruStore(Generic[V]):
    """Bounded mapping: adding past a bound drops the least recently used entries.

    Args:
        max_items: most entries kept.
        max_bytes: most bytes kept (each entry's size is given when it is added).
    """

    def __init__(self, max_items: int, max_bytes: int) -> None:
        self.max_items = max(1, int(max_items))
        self.max_bytes = max(1, int(max_bytes))
        self._items: OrderedDict[Hashable, tuple[V, int]] = OrderedDict()
        self._bytes = 0
        self._lock = threading.Lock()
        self.hits = 0
        self.misses = 0

    def __len__(self) -> int:
        return len(self._items)

    @property
    def nbytes(self) -> int:
        return self._bytes

    def get(self, key: Hashable) -> V | None:
        with self._lock:
            item = self._items.get(key)
            if item is None:
                self.misses += 1
                return None
            self._items.move_to_end(key)
            self.hits += 1
            return item[0]

    def __contains__(self, key: Hashable) -> bool:
        with self._lock:
            return key in self._items

    def put(self, key: Hashable, value: V, nbytes: int) -> bool:
        """Keep ``value``; returns False when it alone is larger than the store."""
        if nbytes > self.max_bytes:
            return False
        with self._lock:
            old = self._items.pop(key, None)
            if old is not None:
                self._bytes -= old[1]
            self._items[key] = (value, nbytes)
            self._bytes += nbytes
            while len(self._items) > self.max_items or self._bytes > self.max_bytes:
                _, (_, size) = self._items.popitem(last=False)
                self._bytes -= size
            return True
