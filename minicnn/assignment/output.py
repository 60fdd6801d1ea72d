"""What the grader writes from what submissions sent: text made safe for a terminal and for a
spreadsheet, and files replaced in one step (a run that is stopped never leaves half a file)."""
import os
import re
import tempfile
from pathlib import Path

# Control characters (but newline and tab; ESC starts every terminal escape code), the Unicode
# line separators and the controls that reorder text on screen: shown as escapes, never printed.
_CONTROL = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u200e\u200f\u202a-\u202e"
                      "\u2028\u2029\u2066-\u2069]")


def printable(text, one_line=True):
    """``text`` (from a submission) made safe to print: escape codes and control characters shown
    as ``\\x1b``-style escapes; with ``one_line``, line breaks shown as ``\\n`` too, so that a
    message cannot start a line of its own (a fake "total")."""
    text = str(text)
    if one_line:
        text = text.replace("\n", "\\n").replace("\t", " ")
    return _CONTROL.sub(lambda m: m.group(0).encode("unicode_escape").decode("ascii"), text)


def spreadsheet_safe(cell):
    """A text cell that no spreadsheet runs as a formula: ``'`` before ``= + - @`` and controls."""
    cell = str(cell)
    return "'" + cell if cell[:1] in ("=", "+", "-", "@", "\t", "\r", "\n") else cell


def write_atomically(path, write):
    """Write ``path`` through a temporary file in its folder, then replace it in one step."""
    path = Path(path)
    handle = tempfile.NamedTemporaryFile("w", dir=path.parent, prefix=f".{path.name}.",
                                         suffix=".part", delete=False, newline="",
                                         encoding="utf-8")
    try:
        with handle:
            write(handle)
        os.replace(handle.name, path)
    except BaseException:
        Path(handle.name).unlink(missing_ok=True)
        raise
