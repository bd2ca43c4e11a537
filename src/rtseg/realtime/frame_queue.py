"""The bounded queue between two pipeline stages: blocking (every frame, in order) or keeping only
the latest frames (a live source never lags), counting what it drops."""

from __future__ import annotations

import threading
from collections import deque


class FrameQueue:
    """A bounded FIFO between stages; ``drop=True`` makes ``put`` evict the oldest item instead of waiting.

    It is closed when all its ``producers`` called ``close()``; ``get_batch`` then returns ``[]`` once
    empty. ``abort()`` empties it and wakes everyone (used when a stage fails).
    """

    def __init__(self, maxsize: int, drop: bool = False, producers: int = 1):
        self.maxsize, self.drop = max(int(maxsize), 1), drop
        self.items: deque = deque()
        self.cond = threading.Condition()
        self.producers = producers
        self.dropped = 0
        self.aborted = False

    def put(self, item) -> list:
        """Queue ``item``; returns the items evicted to make room (drop mode) so the caller can count them."""
        evicted = []
        with self.cond:
            if self.drop:
                while len(self.items) >= self.maxsize:
                    evicted.append(self.items.popleft())
                self.dropped += len(evicted)
            else:
                while len(self.items) >= self.maxsize and not self.aborted:
                    self.cond.wait()
            if not self.aborted:
                self.items.append(item)
            self.cond.notify_all()
        return evicted

    def get_batch(self, max_items: int = 1) -> list:
        """Wait for at least one item, then take every waiting item up to ``max_items``."""
        with self.cond:
            while not self.items and self.producers > 0 and not self.aborted:
                self.cond.wait()
            n = min(max_items, len(self.items))
            batch = [self.items.popleft() for _ in range(n)]
            self.cond.notify_all()
            return batch

    def close(self) -> None:
        with self.cond:
            self.producers -= 1
            self.cond.notify_all()

    def abort(self) -> None:
        with self.cond:
            self.aborted = True
            self.items.clear()
            self.cond.notify_all()
