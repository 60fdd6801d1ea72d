"""Isolation by the operating system: each submission runs inside bubblewrap (``bwrap``).

bubblewrap (Debian's ``bubblewrap`` package, the sandbox Flatpak uses) starts the submission's
process in new Linux namespaces, so that the boundary is the kernel's, not Python's:

* **user**: the process runs as ``nobody`` (uid/gid 65534) with no capabilities, even when the
  grader runs as root, and cannot make further user namespaces;
* **mount**: it sees only what is bound in, read-only: the system's ``/usr`` (and the ``/bin``,
  ``/lib`` links to it), the Python installation, the minicnn package (not the rest of the
  checkout), the extra ``read_paths`` of :class:`~minicnn.assignment.sandbox.Limits`, and the
  sandbox's ``code/`` folder (the kit's released files and the handed-in ones), plus a private
  ``/proc`` and a minimal ``/dev``. Its only writable places are two size-limited tmpfs, its
  working folder and ``/tmp``, which vanish with it. The kit, the references, the checkout, other
  submissions and the grader's home are not there; where one of them lies inside a folder that is
  bound in (a kit under ``/usr``, say), an empty read-only folder is mounted over it;
* **PID**: it sees only its own processes, and when it ends or the grader kills it, the kernel
  kills every process it started (``--die-with-parent`` also covers the grader dying);
* **network, IPC, UTS, cgroup**: no network at all, no shared memory with the host;
* a new session (no terminal to inject keystrokes into) and a clean environment.

:func:`find` says whether bubblewrap works here (it runs it once, with the same mounts, and caches
the answer); :func:`command` builds the command line. Where it does not work (no ``bwrap``, user
namespaces switched off, not Linux), grading falls back to an unisolated child process and says so
loudly (:mod:`minicnn.assignment.sandbox`).
"""
import functools
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy

__all__ = ["Isolation", "find", "command", "SANDBOX", "NOBODY"]

#: Where the sandbox's folders appear inside the isolated process.
SANDBOX = "/sandbox"
#: The unprivileged user and group the isolated process runs as.
NOBODY = 65534
#: System folders bound read-only (or re-created as the links they are, on merged-/usr systems).
_SYSTEM = ("/usr", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32")
#: Single system files worth binding: the dynamic linker's cache and the time zone.
_SYSTEM_FILES = ("/etc/ld.so.cache", "/etc/localtime")


class Isolation:
    """Whether submissions are isolated: ``isolated``, ``tool`` (bwrap's path) and ``detail``.

    ``detail`` is the version when isolated, else why not (for the report and the warnings).
    """

    def __init__(self, tool, detail):
        self.tool, self.detail = tool, detail

    @property
    def isolated(self):
        return self.tool is not None

    def describe(self):
        if self.isolated:
            return f"isolated by the operating system ({self.detail})"
        return f"NOT ISOLATED: {self.detail}"


def python_dirs():
    """Folders of the Python installation: prefixes, and where NumPy is installed."""
    dirs = {sys.prefix, sys.base_prefix, sys.exec_prefix, sys.base_exec_prefix,
            str(Path(numpy.__file__).parents[1])}
    return sorted({os.path.realpath(d) for d in dirs})


def minicnn_package():
    """The minicnn package folder (bound in alone, never the checkout around it)."""
    return str(Path(__file__).resolve().parents[1])


def _covered(path, roots):
    return any(path == root or path.startswith(root.rstrip("/") + "/") for root in roots)


def command(code_dir, job_file, *, scratch_bytes, read_paths=(), hidden=(), tool="bwrap"):
    """The bwrap arguments (up to the ``--``) for one sandboxed process.

    ``code_dir`` and ``job_file`` appear read-only as ``/sandbox/code`` and ``/sandbox/job.json``;
    the working folder and ``/tmp`` are tmpfs of ``scratch_bytes`` each; ``read_paths`` are extra
    folders bound read-only (a data set, say). ``hidden`` are folders that must not be visible
    (the kit, the submissions, the checkout): any of them inside a bound folder gets an empty
    read-only folder mounted over it.
    """
    args = [tool, "--unshare-all", "--unshare-user", "--disable-userns",
            "--uid", str(NOBODY), "--gid", str(NOBODY), "--hostname", "sandbox",
            "--die-with-parent", "--new-session", "--cap-drop", "ALL",
            # /tmp first: what is bound below may lie under the host's /tmp (a clone there).
            "--size", str(scratch_bytes), "--perms", "0700", "--tmpfs", "/tmp"]
    bound = []
    for path in _SYSTEM:
        if os.path.islink(path):
            args += ["--symlink", os.readlink(path), path]
        elif os.path.isdir(path):
            args += ["--ro-bind", path, path]
            bound.append(path)
    for path in _SYSTEM_FILES:
        if os.path.isfile(path):
            args += ["--ro-bind", path, path]
    for path in [*python_dirs(), *map(str, read_paths)]:
        path = os.path.realpath(path)
        if not _covered(path, bound):
            args += ["--ro-bind", path, path]
            bound.append(path)
    for path in sorted({os.path.realpath(p) for p in hidden}):
        if _covered(path, bound) and os.path.isdir(path):
            args += ["--perms", "0555", "--tmpfs", path, "--remount-ro", path]
    package = minicnn_package()
    args += ["--ro-bind", package, package,
             "--proc", "/proc", "--dev", "/dev",
             "--dir", SANDBOX,
             "--ro-bind", str(code_dir), f"{SANDBOX}/code",
             "--ro-bind", str(job_file), f"{SANDBOX}/job.json",
             "--size", str(scratch_bytes), "--perms", "0700", "--tmpfs", f"{SANDBOX}/work",
             "--remount-ro", "/", "--chdir", f"{SANDBOX}/work"]
    return args + ["--"]


@functools.lru_cache(maxsize=None)
def find(tool=None):
    """An :class:`Isolation`: bubblewrap if it runs a Python here with the grader's mounts.

    The answer is cached for the process. ``tool`` is the bwrap to use (default: ``bwrap`` on
    ``PATH``, or ``$MINICNN_BWRAP``; an empty ``$MINICNN_BWRAP`` switches isolation off, for
    comparing the two).
    """
    if tool is None:
        tool = os.environ.get("MINICNN_BWRAP", "bwrap")
    if not tool:
        return Isolation(None, "isolation switched off ($MINICNN_BWRAP is empty)")
    if not sys.platform.startswith("linux"):
        return Isolation(None, f"bubblewrap needs Linux (this is {sys.platform})")
    path = shutil.which(tool)
    if path is None:
        return Isolation(None, f"bubblewrap ({tool}) is not installed "
                               f"(Debian/Ubuntu: sudo apt-get install bubblewrap)")
    try:
        with tempfile.TemporaryDirectory(prefix="minicnn-probe-") as empty:
            probe = command(empty, os.devnull, scratch_bytes=2 ** 20, tool=path)
            done = subprocess.run(probe + [sys.executable, "-I", "-c", "import numpy"],
                                  stdin=subprocess.DEVNULL, capture_output=True, timeout=60,
                                  env={"PATH": os.environ.get("PATH", "/usr/bin:/bin")})
    except (OSError, subprocess.TimeoutExpired) as error:
        return Isolation(None, f"bubblewrap ({path}) could not be started: {error}")
    if done.returncode != 0:
        why = done.stderr.decode("utf-8", "replace").strip().splitlines()
        return Isolation(None, f"bubblewrap ({path}) does not work here: "
                               f"{why[-1] if why else f'exit code {done.returncode}'} "
                               f"(are unprivileged user namespaces switched off?)")
    version = subprocess.run([path, "--version"], capture_output=True, text=True).stdout.strip()
    return Isolation(path, version or "bubblewrap")
