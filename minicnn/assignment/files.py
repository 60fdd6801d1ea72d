"""Files the grader touches on a submission's behalf: copied without trusting them, removed whatever
they became.

* :func:`read_regular` reads, and :func:`copy_regular` copies into the sandbox, one handed-in
  file. Each part of its path is opened
  with ``O_NOFOLLOW``, so no symbolic link is ever followed, and the file must be a regular file
  (checked with ``fstat`` on the open descriptor, never on the path) with one name (a hard link to
  the references is refused), not larger than the cap; it is read with a bounded read, so a file
  that lies about its size (``/proc``, a growing file) cannot fill the disk either. Links, devices,
  FIFOs, sockets and oversize or sparse files are refused with :class:`HandInError`, which names
  the file and says why.
* :func:`copy_tree` does the same for every file of a folder (students grading their own folder).
* :func:`digest` fingerprints a folder (the grading kit) so that the grader can prove it unchanged.
* :func:`remove_tree` removes a sandbox folder even when what ran there made files unreadable,
  folders unwritable or files immutable, and says what it could not remove.
"""
import errno
import fcntl
import hashlib
import os
import shutil
import stat
import struct
from pathlib import Path, PurePosixPath

__all__ = ["HandInError", "read_regular", "copy_regular", "copy_tree", "digest", "remove_tree", "CLUTTER"]

#: Names never copied from a student's own folder (caches, version control, notebooks' backups).
CLUTTER = {"__pycache__", ".git", ".pytest_cache", ".ipynb_checkpoints", ".mypy_cache"}
_READ = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_NOCTTY | getattr(os, "O_CLOEXEC", 0)
_CHUNK = 1024 ** 2


class HandInError(Exception):
    """A handed-in file that the grader refuses to copy (a link, a device, too large, ...)."""


def _kind(mode):
    for test, name in ((stat.S_ISLNK, "a symbolic link"), (stat.S_ISDIR, "a folder"),
                       (stat.S_ISFIFO, "a FIFO"), (stat.S_ISSOCK, "a socket"),
                       (stat.S_ISCHR, "a device"), (stat.S_ISBLK, "a device")):
        if test(mode):
            return name
    return "not a regular file"


def _open_inside(folder, relative):
    """A read-only descriptor of ``folder/relative``, no link followed on the way; raises OSError."""
    parts = PurePosixPath(relative).parts
    fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY | getattr(os, "O_CLOEXEC", 0))
    try:
        for part in parts[:-1]:
            inner = os.open(part, _READ | os.O_DIRECTORY, dir_fd=fd)
            os.close(fd)
            fd = inner
        return os.open(parts[-1], _READ, dir_fd=fd)
    finally:
        os.close(fd)


def read_regular(folder, relative, max_bytes, single_link=True):
    """The bytes of ``folder/relative``, or None when it does not exist.

    Raises :class:`HandInError` for anything but a plain regular file of at most ``max_bytes``
    (with ``single_link``, one that has no other name: not a hard link).
    """
    name = str(relative)
    try:
        fd = _open_inside(folder, relative)
    except FileNotFoundError:
        return None
    except OSError as error:
        if error.errno in (errno.ELOOP, errno.ENOTDIR):
            raise HandInError(f"{name}: it or a folder on its path is a symbolic link "
                              f"(hand in plain files)") from None
        raise HandInError(f"{name}: cannot be opened ({error.strerror})") from None
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise HandInError(f"{name}: is {_kind(info.st_mode)}, not a plain file")
        if single_link and info.st_nlink != 1:
            raise HandInError(f"{name}: is a hard link to another file (hand in a file of its own)")
        if info.st_size > max_bytes:
            raise HandInError(f"{name}: {info.st_size} bytes, more than the {max_bytes} allowed")
        chunks, read = [], 0
        while chunk := os.read(fd, _CHUNK):
            read += len(chunk)
            if read > max_bytes:
                raise HandInError(f"{name}: more than the {max_bytes} bytes allowed "
                                  f"(its size said {info.st_size})")
            chunks.append(chunk)
    except BlockingIOError:
        raise HandInError(f"{name}: cannot be read without waiting (not a plain file)") from None
    finally:
        os.close(fd)
    return b"".join(chunks)


def copy_regular(folder, relative, target, max_bytes, single_link=True):
    """Copy ``folder/relative`` (checked by :func:`read_regular`) to ``target``, a new file;
    returns False when it does not exist."""
    data = read_regular(folder, relative, max_bytes, single_link)
    if data is None:
        return False
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    out = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o644)
    try:
        os.write(out, data)
    finally:
        os.close(out)
    return True


def copy_tree(folder, target, max_bytes, max_total):
    """Copy every plain file under ``folder`` (but :data:`CLUTTER`) to ``target``, refusing the rest.

    ``max_bytes`` caps each file, ``max_total`` all of them together; raises :class:`HandInError`.
    """
    folder, total = Path(folder), 0
    pending = [PurePosixPath()]
    while pending:
        relative = pending.pop()
        with os.scandir(folder / relative) as entries:
            for entry in sorted(entries, key=lambda e: e.name):
                if entry.name in CLUTTER:
                    continue
                inner = relative / entry.name
                if entry.is_dir(follow_symlinks=False):
                    pending.append(inner)
                    continue
                copy_regular(folder, inner, Path(target) / inner, max_bytes)
                total += (Path(target) / inner).stat().st_size
                if total > max_total:
                    raise HandInError(f"the folder holds more than the {max_total} bytes allowed "
                                      f"(at {inner})")
        (Path(target) / relative).mkdir(parents=True, exist_ok=True)


def digest(folder):
    """``{relative path: sha256}`` of every file under ``folder`` (links as their target text)."""
    found = {}
    for top, dirs, files in os.walk(folder):
        dirs.sort()
        for name in sorted(files):
            path = Path(top) / name
            key = str(path.relative_to(folder))
            if path.is_symlink():
                found[key] = "link:" + os.readlink(path)
                continue
            sha = hashlib.sha256()
            with open(path, "rb") as handle:
                while chunk := handle.read(_CHUNK):
                    sha.update(chunk)
            found[key] = sha.hexdigest()
    return found


# Linux's inode flags (linux/fs.h): immutable and append-only files cannot be removed.
_GETFLAGS, _SETFLAGS, _STICKY_FLAGS = 0x80086601, 0x40086602, 0x10 | 0x20


def _unpin(path):
    """Make ``path`` removable: immutable/append-only flags cleared, owner rwx on folders."""
    if os.path.islink(path):
        return
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
        try:
            flags = struct.unpack("i", fcntl.ioctl(fd, _GETFLAGS, b"\0" * 4))[0]
            if flags & _STICKY_FLAGS:
                fcntl.ioctl(fd, _SETFLAGS, struct.pack("i", flags & ~_STICKY_FLAGS))
        finally:
            os.close(fd)
    except OSError:
        pass                           # no such flags here, or not allowed to clear them
    try:
        mode = os.lstat(path).st_mode
        os.chmod(path, (mode | stat.S_IRWXU) if stat.S_ISDIR(mode) else (mode | stat.S_IWUSR))
    except OSError:
        pass


def remove_tree(path):
    """Remove ``path`` and all it holds, whatever was done to it; returns what is left (a list)."""
    path = Path(path)
    if not os.path.lexists(path):
        return []

    def retry(function, failed, _):
        _unpin(os.path.dirname(failed))
        _unpin(failed)
        try:
            function(failed)
        except FileNotFoundError:
            pass
        except OSError:
            if os.path.isdir(failed) and not os.path.islink(failed):
                shutil.rmtree(failed, onerror=retry)

    for top, dirs, files in os.walk(path):          # unreadable folders first, so walk can see
        for name in dirs:
            _unpin(os.path.join(top, name))
    shutil.rmtree(path, onerror=retry)
    if not os.path.lexists(path):
        return []
    return [str(p) for p in path.rglob("*")] or [str(path)]
