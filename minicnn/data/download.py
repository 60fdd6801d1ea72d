"""Fetching a data file from the web: progress bar, checksum, atomic write.

:func:`download_file` streams a URL into a temporary file next to the destination, computing
its MD5 on the way, and renames it into place only when the checksum matches. An interrupted or
corrupted download therefore never leaves a half-written file under the real name, and a later
run never mistakes one for data.

The progress bar comes from ``tqdm`` when it is installed (``pip install minicnn[progress]``) and
standard error is a terminal; otherwise a plain text line is rewritten there (or, in a log file,
written once at the end).
"""
import hashlib
import os
import sys
import urllib.request

from ..serialization import atomic_write

try:  # optional extra: pip install 'minicnn[progress]'
    from tqdm import tqdm
except ImportError:
    tqdm = None

_CHUNK = 1 << 16  # bytes read per step


def md5sum(path):
    """Hex MD5 digest of a file, read in chunks."""
    digest = hashlib.md5(usedforsecurity=False)
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(_CHUNK), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _size(n):
    """``1234567 -> '1.2 MB'``."""
    for unit in ("B", "kB", "MB"):
        if n < 1000:
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1000
    return f"{n:.1f} GB"


class _TextProgress:
    """A minimal stand-in for a tqdm bar: ``name  1.2 MB / 26.4 MB  4%`` on one rewritten line.

    On a stream that is not a terminal (a log file) nothing is redrawn: the line is written
    once, when the download ends."""

    def __init__(self, total, desc, stream=None):
        self.total, self.desc, self.done = total, desc, 0
        self.stream = stream if stream is not None else sys.stderr
        self.tty = _is_terminal(self.stream)

    def _line(self):
        line = f"{self.desc}  {_size(self.done)}"
        if self.total:
            line += f" / {_size(self.total)}  {100 * self.done // self.total}%"
        return line

    def update(self, n):
        self.done += n
        if self.tty:
            self.stream.write("\r" + self._line())
            self.stream.flush()

    def close(self):
        self.stream.write(("\r" if self.tty else "") + self._line() + "\n")
        self.stream.flush()


def _is_terminal(stream):
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):  # no isatty, or a closed stream
        return False


def _progress_bar(total, desc):
    """tqdm's bar on a terminal (when installed), else :class:`_TextProgress`."""
    if tqdm is None or not _is_terminal(sys.stderr):
        return _TextProgress(total, desc)
    return tqdm(total=total, desc=desc, unit="B", unit_scale=True, unit_divisor=1024)


def download_file(url, dest, md5=None, timeout=30, progress=True):
    """Download ``url`` to the file ``dest``, checking its MD5 if ``md5`` is given.

    The bytes go to a temporary file in ``dest``'s folder, which is renamed to ``dest`` (an
    atomic step on one file system) only once the download is complete and the checksum
    matches. On any failure the temporary file is removed and the exception propagates:
    ``urllib.error.URLError``/``OSError`` for network trouble, ``RuntimeError`` for a checksum
    mismatch. Returns ``dest``.
    """
    dest = os.fspath(dest)
    os.makedirs(os.path.dirname(os.path.abspath(dest)), exist_ok=True)
    digest = hashlib.md5(usedforsecurity=False)
    with atomic_write(dest) as out, urllib.request.urlopen(url, timeout=timeout) as response:
        total = int(response.headers.get("Content-Length") or 0) or None
        bar = _progress_bar(total, os.path.basename(dest)) if progress else None
        try:
            for chunk in iter(lambda: response.read(_CHUNK), b""):
                out.write(chunk)
                digest.update(chunk)
                if bar is not None:
                    bar.update(len(chunk))
        finally:
            if bar is not None:
                bar.close()
        if md5 is not None and digest.hexdigest() != md5:  # raising here discards the download
            raise RuntimeError(f"checksum mismatch for {url}: expected MD5 {md5}, "
                               f"got {digest.hexdigest()}; the download was discarded")
    return dest
