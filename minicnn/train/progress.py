"""A per-epoch progress bar: ``tqdm`` when it is installed (``pip install 'minicnn[progress]'``)
and stderr is a terminal, otherwise a small text bar. Never required: training runs the same
without either (``enabled=False``).

When stderr is not a terminal (redirected to a log file, or a pipe) nothing is redrawn: each bar
writes one line, when it closes, so a log gets one line per epoch (and one per evaluation)."""
import sys
import time

try:  # optional extra
    from tqdm.auto import tqdm as _tqdm
except Exception:  # ImportError, or a broken installation
    _tqdm = None


class ProgressBar:
    """``bar = ProgressBar(total, "epoch 1/5")``; ``bar.update(1, loss=..., acc=...)``; ``bar.close()``.

    Postfix values are shown as given (format them yourself). On a terminal the bar is tqdm's
    (if installed) or a text bar redrawn at most ten times a second; elsewhere it is written
    once, at ``close()`` (a log file gets one line per epoch rather than hundreds of redraws).
    ``use_tqdm=True`` asks for tqdm even when the stream is not a terminal.
    """

    def __init__(self, total, desc="", enabled=True, file=None, use_tqdm=None):
        self.total, self.desc, self.enabled = int(total), desc, enabled
        self.file = sys.stderr if file is None else file
        self.n, self.postfix = 0, {}
        self._last_draw = 0.0
        self._tqdm = None
        try:
            self._tty = bool(self.file.isatty())
        except Exception:  # a stream without isatty, or a closed one
            self._tty = False
        if use_tqdm is None:
            use_tqdm = self._tty
        if enabled and use_tqdm and _tqdm is not None:
            self._tqdm = _tqdm(total=self.total, desc=desc, file=self.file, leave=True,
                               dynamic_ncols=True, unit="batch")

    def update(self, n=1, **postfix):
        """Advance by ``n`` batches and show ``postfix`` (name -> formatted value)."""
        self.n += n
        self.postfix = postfix
        if not self.enabled:
            return
        if self._tqdm is not None:
            self._tqdm.set_postfix(postfix, refresh=False)
            self._tqdm.update(n)
            return
        now = time.monotonic()
        if self._tty and (now - self._last_draw >= 0.1 or self.n >= self.total):
            self._last_draw = now
            self._draw("\r")

    def _line(self):
        width = 24
        frac = self.n / self.total if self.total else 1.0
        filled = int(width * min(frac, 1.0))
        bar = "=" * filled + (">" if filled < width else "") + " " * (width - filled - 1)
        post = "  ".join(f"{k} {v}" for k, v in self.postfix.items())
        return f"{self.desc} [{bar}] {self.n}/{self.total}  {post}"

    def _draw(self, prefix):
        try:
            self.file.write(prefix + self._line() + "\x1b[K" * self._tty)
            self.file.flush()
        except Exception:  # a closed or broken stream must never stop training
            self.enabled = False

    def close(self):
        """Finish the bar (the text fallback writes its final line now)."""
        if not self.enabled:
            return
        if self._tqdm is not None:
            self._tqdm.close()
            return
        self._draw("\r" if self._tty else "")
        try:
            self.file.write("\n")
            self.file.flush()
        except Exception:
            pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
        return False
