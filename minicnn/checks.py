"""Checks of device values: now, or at the training loop's next read-back.

Validating an input that lives on the GPU (a label out of range, say) means reading a value back to
the host, which waits for the GPU to finish. A training loop that did that at every step would run
at the speed of its slowest sync. So :func:`require` raises at once for host values, and inside
:func:`deferred_checks` keeps a device flag until the loop reads its metrics back anyway.
"""
import contextlib
import threading

from .backend import device_of, get_array_module, is_array, to_numpy


class DeferredChecks:
    """Checks of device values kept for one read-back (:meth:`check`) instead of a sync each;
    ``where`` (set by the loop, e.g. ``"epoch 1, step 7"``) is named in a failing check's error."""

    def __init__(self):
        self.pending, self.where = [], None

    def check(self):
        """Copy every pending flag to the host at once; raise ``ValueError`` for the first true one."""
        if not self.pending:
            return
        pending, self.pending = self.pending, []
        xp = get_array_module(pending[0][0])
        flags = to_numpy(xp.stack([flag.reshape(()) for flag, _, _ in pending]))
        for flag, (_, message, where) in zip(flags, pending):
            if flag:
                raise ValueError(message() + (f" ({where})" if where else ""))


_deferring = threading.local()


@contextlib.contextmanager
def deferred_checks():
    """``with deferred_checks() as checks:`` :func:`require` on device arrays waits for
    ``checks.check()``, which the training loop calls when it reads its metrics back (every few
    steps): no device-to-host copy per step for them. Checks left at the end run then."""
    previous, _deferring.checks = getattr(_deferring, "checks", None), DeferredChecks()
    try:
        yield _deferring.checks
        _deferring.checks.check()
    finally:
        _deferring.checks = previous


def require(flag, message):
    """Raise ``ValueError(message())`` if the one-element boolean array ``flag`` is true. Reading
    a device value waits for the GPU, so inside :func:`deferred_checks` a device flag is kept
    for the block's next ``check()`` instead (the caller must keep going safely meanwhile)."""
    checks = getattr(_deferring, "checks", None)
    if checks is not None and is_array(flag) and device_of(flag) != "cpu":
        checks.pending.append((flag, message, checks.where))
    elif bool(flag):
        raise ValueError(message())
