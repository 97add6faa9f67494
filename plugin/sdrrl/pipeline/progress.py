"""Progress lines for long stages: items done, items per second, time left."""

from __future__ import annotations

import sys
import time
from typing import TextIO


def _fmt_duration(seconds: float) -> str:
    seconds = int(max(seconds, 0))
    h, rem = divmod(seconds, 3600)
    m, s = divmod(rem, 60)
    return f"{h}:{m:02d}:{s:02d}"


class Progress:
    """Prints ``label: done/total unit (pct) rate/s, ETA h:mm:ss`` at most every ``every_s``."""

    def __init__(self, label: str, total: int, unit: str = "rows", every_s: float = 10.0,
                 stream: TextIO | None = None):
        self.label, self.total, self.unit, self.every_s = label, total, unit, every_s
        self.stream = stream if stream is not None else sys.stderr
        self.done = 0
        self.skipped = 0  # found done (cache): counted in done, not in the rate
        self.start = time.monotonic()
        self._last = self.start

    def update(self, n: int = 1) -> None:
        self.done += n
        now = time.monotonic()
        if now - self._last >= self.every_s or self.done >= self.total:
            self._last = now
            self.print_line()

    def skip(self, n: int) -> None:
        """Items already done (from the cache): a resumed run's rate and ETA must not count them."""
        self.skipped += n
        self.update(n)

    def line(self) -> str:
        elapsed = max(time.monotonic() - self.start, 1e-9)
        rate = (self.done - self.skipped) / elapsed
        pct = 100.0 * self.done / self.total if self.total else 100.0
        left = self.total - self.done
        eta = _fmt_duration(left / rate) if rate > 0 else ("unknown" if left > 0 else _fmt_duration(0))
        return (f"{self.label}: {self.done}/{self.total} {self.unit} ({pct:.1f}%), "
                f"{rate:.1f} {self.unit}/s, ETA {eta}")

    def print_line(self) -> None:
        print(self.line(), file=self.stream, flush=True)

    @property
    def elapsed(self) -> float:
        return time.monotonic() - self.start


def say(message: str, stream: TextIO | None = None) -> None:
    print(message, file=stream if stream is not None else sys.stderr, flush=True)
