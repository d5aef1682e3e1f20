"""Progress of a training epoch: a live bar on a terminal, a line every few seconds in a log.

tqdm redraws its bar with carriage returns ten times a second, which a log
file or a CI console keeps as thousands of overwritten lines on one line.
When the output is not a terminal, `Progress` writes instead one plain line
every `interval` seconds (10 by default) and one at the end of the epoch.
"""

import sys
import time

from tqdm import tqdm

LOG_INTERVAL_SECONDS = 10.0


def is_terminal(stream):
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):  # closed or not a real stream
        return False


class Progress:
    """update(count, loss=...) after each batch; close() at the end of the epoch."""

    def __init__(self, total, description, stream=None, enabled=True, interval=None,
                 clock=time.monotonic, leave=False):
        self.total = total
        self.description = description
        self.stream = sys.stderr if stream is None else stream
        self.enabled = enabled
        self.interval = LOG_INTERVAL_SECONDS if interval is None else interval
        self.clock = clock
        self.done = 0
        self.loss = None
        self.started = clock()
        self.last_line = self.started
        self.bar = None
        if enabled and is_terminal(self.stream):
            self.bar = tqdm(total=total, desc=description, unit="img", leave=leave,
                            dynamic_ncols=True, file=self.stream)

    def rate(self):
        elapsed = self.clock() - self.started
        return self.done / elapsed if elapsed > 0 else 0.0

    def line(self):
        share = self.done / self.total if self.total else 1.0
        text = (f"{self.description}: {self.done}/{self.total} ({share:.0%}), "
                f"{self.rate():.0f} samples/s")
        if self.loss is not None:
            text += f", loss {self.loss:.4f}"
        return text

    def update(self, count, loss=None):
        self.done += count
        if loss is not None:
            self.loss = loss
        if not self.enabled:
            return
        if self.bar is not None:
            self.bar.update(count)
            self.bar.set_postfix(loss=f"{self.loss:.4f}" if self.loss is not None else "-",
                                 rate=f"{self.rate():.0f}/s", refresh=False)
            return
        now = self.clock()
        if now - self.last_line >= self.interval:
            self.last_line = now
            self.stream.write(self.line() + "\n")
            self.stream.flush()

    def close(self):
        if self.bar is not None:
            self.bar.close()
        elif self.enabled and self.done:
            self.stream.write(self.line() + "\n")
            self.stream.flush()

    def write(self, message):
        """A line that does not break the bar."""
        if self.bar is not None:
            tqdm.write(message, file=self.stream)
        else:
            self.stream.write(message + "\n")
            self.stream.flush()
