"""Run a submission's checks in a separate, resource-limited process and collect its arrays.

The grading process (:func:`minicnn.assignment.grade`) never imports a student's code. For every
submission it calls :func:`run_checks`, which

* makes a temporary folder (the *sandbox*) with ``code/`` (a copy of the grading kit's files
  without ``references.npz``, plus the handed-in ``SUBMISSION_FILES`` copied from the submission),
  an empty working folder ``work/`` and ``results/``;
* starts ``python -m minicnn.assignment.child`` there (:mod:`minicnn.assignment.child`) with a clean
  environment and in a new process group; the child lowers its own resource limits
  (:class:`Limits`) and installs a guard against file access outside the sandbox before it
  imports anything of the assignment;
* watches the child: a check that runs past its question's ``timeout`` (plus a grace period) gets
  the whole process group killed, and so does the whole submission when it uses up
  :attr:`Limits.total_seconds`; after a kill or a crash a new child goes on with the checks not
  yet run, so one bad check costs only itself;
* reads back, as untrusted data, what the child wrote: per check a status and a message (JSON)
  and the returned arrays (``.npz``, read with ``allow_pickle=False`` after checking the sizes).

It returns :class:`ChildResult` objects; scoring is :mod:`minicnn.assignment.grade`'s business.
Only POSIX systems (Linux, macOS) have the resource limits; elsewhere :func:`run_checks` refuses.
"""
import dataclasses
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import zipfile
from pathlib import Path

import numpy as np

__all__ = ["Limits", "ChildResult", "SandboxRun", "SandboxError", "run_checks", "prepare_code",
           "CRASHED", "NOT_RUN", "TIMEOUT"]

CRASHED, NOT_RUN, TIMEOUT = "crashed", "not run", "timeout"

#: Files of the grading kit never copied into the sandbox.
PRIVATE_FILES = {"references.npz"}
_CLUTTER = shutil.ignore_patterns("__pycache__", "*.pyc", "*.pyo", ".git", ".pytest_cache",
                                  ".ipynb_checkpoints", "references.npz")
#: How often (seconds) the grading process looks at the child's results folder.
POLL_SECONDS = 0.02
#: Longest output of the child (bytes, from its end) kept for the report.
OUTPUT_TAIL = 4000


class SandboxError(Exception):
    """The sandbox could not be set up, or the child could not describe the grader."""


@dataclasses.dataclass
class Limits:
    """Resource limits of one submission's grading (None: no limit of that kind).

    ``total_seconds`` is the wall-clock budget for the whole submission, all checks and restarts
    included (it also bounds the child's CPU time). ``check_seconds`` caps every question's own
    ``timeout``; ``grace_seconds`` is how much longer than its time limit a check may run before
    the grading process kills it (the child stops well-behaved checks itself, at the limit).
    ``startup_seconds`` bounds starting Python and importing the grader and the handed-in files.
    ``memory_bytes`` is the address-space limit (RLIMIT_AS; leave it None when checks use a GPU),
    ``open_files``, ``file_bytes`` (largest file the child may write, its printed output
    included) and ``processes`` (RLIMIT_NPROC; 0: no new processes) the other limits.
    ``read_paths`` are extra folders the child may read (a data set, say). ``output_bytes`` caps
    the total size of the arrays read back.
    """
    total_seconds: float = 600.0
    check_seconds: float = None
    grace_seconds: float = 2.0
    startup_seconds: float = 60.0
    memory_bytes: int = 4 * 1024 ** 3
    open_files: int = 64
    file_bytes: int = 64 * 1024 ** 2
    processes: int = 0
    read_paths: tuple = ()
    output_bytes: int = 256 * 1024 ** 2

    def child_limits(self, seconds_left):
        """The numbers the child passes to ``setrlimit``."""
        return {"cpu_seconds": max(1, int(seconds_left) + 1), "memory_bytes": self.memory_bytes,
                "open_files": self.open_files, "file_bytes": self.file_bytes,
                "processes": self.processes}


@dataclasses.dataclass
class SandboxRun:
    """What :func:`run_checks` found out.

    ``results``: ``{check id: ChildResult}``; ``manifest``: the questions as the child's grader
    described them (untrusted; None when it wrote none); ``output``: the end of what the child
    printed; ``failure``: why the child could not even list the checks (else None).
    """
    results: dict
    manifest: dict
    output: str
    failure: str = None


@dataclasses.dataclass
class ChildResult:
    """What came back for one check. ``outputs`` is None when no (valid) arrays came back."""
    status: str
    message: str
    outputs: dict = None


# ----------------------------------------------------------------------------------------------
# Setting up the sandbox
# ----------------------------------------------------------------------------------------------

def _safe_relative(name):
    """A SUBMISSION_FILES entry as a relative path; refuses absolute paths and ``..``."""
    path = Path(name)
    if path.is_absolute() or ".." in path.parts or not path.parts:
        raise SandboxError(f"SUBMISSION_FILES entry {name!r} must be a path inside the submission")
    return path


def prepare_code(code_dir, submission, kit, submission_files):
    """Fill ``code_dir``: the kit's files (never ``references.npz``), then the handed-in files.

    Without a kit (students grading themselves) the whole submission folder is copied instead.
    Symbolic links are copied as the files they point to, and only regular files are copied.
    """
    if kit is None:
        shutil.copytree(submission, code_dir, ignore=_CLUTTER, symlinks=False)
        return
    shutil.copytree(kit, code_dir, ignore=_CLUTTER, symlinks=False)
    for name in submission_files:
        relative = _safe_relative(name)
        source, target = Path(submission) / relative, Path(code_dir) / relative
        if target.exists():
            target.unlink()                 # a kit should not hold it; the submission's wins
        if source.is_file():
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(source, target)


def _python_dirs():
    """Folders of the Python installation (standard library, site-packages)."""
    dirs = {sys.prefix, sys.base_prefix, sys.exec_prefix, sys.base_exec_prefix}
    return sorted(os.path.realpath(d) for d in dirs)


def _minicnn_dirs():
    """The minicnn package folder (readable by the child) and the folder that holds it."""
    package = Path(__file__).resolve().parents[1]
    return str(package), str(package.parent)


def _child_environment(work_dir, minicnn_parent):
    """A clean environment: nothing inherited but PATH and the locale. Where CuPy is installed,
    importing minicnn imports it, and CuPy makes its kernel cache under $HOME at import: that
    goes beside the working folder, which stays as the submission left it."""
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(work_dir),
           "CUPY_CACHE_DIR": str(Path(work_dir).parent / "cupy-cache"),
           "LANG": os.environ.get("LANG", "C.UTF-8"), "PYTHONPATH": minicnn_parent,
           "PYTHONDONTWRITEBYTECODE": "1", "PYTHONUNBUFFERED": "1", "PYTHONNOUSERSITE": "1",
           "PYTHONHASHSEED": "0",
           "OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1",
           "MINICNN_NUM_THREADS": "1"}
    return env


# ----------------------------------------------------------------------------------------------
# Reading what the child wrote
# ----------------------------------------------------------------------------------------------

def _read_json(path, limit=64 * 1024):
    """A small JSON object from the child, or None when absent, too large or malformed."""
    try:
        if path.stat().st_size > limit:
            return None
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def read_arrays(path, max_bytes):
    """The arrays of a child's ``.npz``: ``{name: array}``; raises ValueError when unusable.

    Checked before anything is allocated: the total uncompressed size, and every array's declared
    size against its stored size (a small file must not unpack into a huge array). Only numeric
    arrays; never unpickles.
    """
    arrays, total = {}, 0
    try:
        with zipfile.ZipFile(path) as archive:
            for info in archive.infolist():
                total += info.file_size
                if total > max_bytes:
                    raise ValueError(f"more than {max_bytes} bytes of outputs")
                if not info.filename.endswith(".npy"):
                    raise ValueError(f"unexpected member {info.filename!r}")
                with archive.open(info) as member:
                    version = np.lib.format.read_magic(member)
                    read_header = (np.lib.format.read_array_header_1_0 if version == (1, 0)
                                   else np.lib.format.read_array_header_2_0)
                    shape, _, dtype = read_header(member)
                    declared = int(np.prod(shape, dtype=object)) * dtype.itemsize
                    if dtype.hasobject or dtype.kind not in "biufc" or declared > info.file_size:
                        raise ValueError(f"{info.filename}: not a plain numeric array")
        with np.load(path, allow_pickle=False) as data:
            for key in data.files:
                arrays[key] = data[key]
    except (OSError, zipfile.BadZipFile, EOFError) as error:
        raise ValueError(f"unreadable outputs ({error})") from None
    return arrays


def _collect(results, check_ids, found, limits):
    """Move newly finished checks of the child into ``found`` ({id: ChildResult})."""
    for check_id in check_ids:
        if check_id in found:
            continue
        report = _read_json(results / f"{check_id}.json")
        if report is None:
            continue
        status, message = report.get("status"), report.get("message", "")
        message = message[:1000] if isinstance(message, str) else ""
        outputs = None
        if (results / f"{check_id}.npz").is_file():
            try:
                outputs = read_arrays(results / f"{check_id}.npz", limits.output_bytes)
            except ValueError as error:
                status, message = "error", f"the outputs could not be read back: {error}"
        found[check_id] = ChildResult(str(status), message, outputs)


def _current_check(results, check_ids, found):
    """The check the child is running now (started, not finished), or None."""
    current = None
    for check_id in check_ids:
        if check_id not in found and (results / f"{check_id}.start").exists():
            current = check_id
    return current


def _describe_end(returncode, killed_for):
    """Why the child ended, in words."""
    if killed_for:
        return killed_for
    if returncode is not None and returncode < 0:
        number = -returncode
        name = signal.Signals(number).name if number in signal.valid_signals() else str(number)
        reasons = {"SIGKILL": " (out of memory?)", "SIGXCPU": " (CPU time limit)",
                   "SIGXFSZ": " (it wrote more than the file-size limit)",
                   "SIGSEGV": " (segmentation fault)"}
        return f"the grading process was killed by {name}{reasons.get(name, '')}"
    return (f"the grading process ended early (exit code {returncode}; "
            f"os._exit or sys.exit at import?)")


def _output_tail(path):
    try:
        with open(path, "rb") as handle:
            handle.seek(0, os.SEEK_END)
            size = handle.tell()
            handle.seek(max(0, size - OUTPUT_TAIL))
            return handle.read().decode("utf-8", errors="replace")
    except OSError:
        return ""


# ----------------------------------------------------------------------------------------------
# Running the child
# ----------------------------------------------------------------------------------------------

def _kill(process):
    """Kill the child's whole process group and wait for the child."""
    try:
        os.killpg(process.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass
    try:
        process.kill()
    except ProcessLookupError:
        pass
    process.wait()


class _Run:
    """One submission's grading: starts children until every planned check has a result."""

    def __init__(self, root, plan, kinds, limits):
        self.root, self.plan, self.kinds, self.limits = root, plan, kinds, limits
        self.results = root / "results"
        self.found = {}
        self.manifest = None
        self.failure = None           # why the child could not list the checks (plan None only)
        self.deadline = time.monotonic() + limits.total_seconds
        package, package_parent = _minicnn_dirs()
        self.package_parent = package_parent
        self.readable = [str(root), package, *_python_dirs(), *map(str, limits.read_paths)]

    def _job(self, remaining):
        left = self.deadline - time.monotonic()
        job = {"code_dir": str(self.root / "code"), "work_dir": str(self.root / "work"),
               "results_dir": str(self.results), "checks": remaining, "kinds": list(self.kinds),
               "check_seconds": self.limits.check_seconds,
               "import_seconds": self.limits.startup_seconds,
               "limits": self.limits.child_limits(left), "python_dirs": _python_dirs(),
               "readable": self.readable, "writable": [str(self.root)]}
        path = self.root / "job.json"
        path.write_text(json.dumps(job), encoding="utf-8")
        return path

    def _start(self, remaining):
        shutil.rmtree(self.results, ignore_errors=True)     # a fresh folder for every child
        self.results.mkdir()
        job = self._job(remaining)
        with open(self.root / "output.txt", "ab") as output:
            return subprocess.Popen(
                [sys.executable, "-B", "-s", "-m", "minicnn.assignment.child", str(job)],
                cwd=self.root / "work", env=_child_environment(self.root / "work",
                                                               self.package_parent),
                stdin=subprocess.DEVNULL, stdout=output, stderr=subprocess.STDOUT,
                start_new_session=True, close_fds=True)

    def _timeouts(self):
        """{check id: seconds after which the grading process kills the child}."""
        timeouts = {}
        for question in self.manifest["questions"]:
            seconds = float(question.get("timeout", 30.0))
            if self.limits.check_seconds:
                seconds = min(seconds, self.limits.check_seconds)
            for check in question["checks"]:
                check_id = f"{question['name']}.{check['name']}"
                timeouts[check_id] = seconds + self.limits.grace_seconds
        return timeouts

    def _remaining(self):
        return [c for c in self.plan if c not in self.found] if self.plan is not None else None

    def run(self):
        """Start children until done; returns ({check id: ChildResult}, manifest or None)."""
        while True:
            remaining = self._remaining()
            if remaining == []:
                break
            if time.monotonic() >= self.deadline:
                self._give_up(remaining, f"not run: the time budget of "
                                         f"{self.limits.total_seconds:g} s is used up")
                break
            self._watch(self._start(remaining))
            if self.plan is None:                  # the child could not even list the checks
                break
        return self.found, self.manifest

    def _give_up(self, check_ids, message, status=NOT_RUN):
        for check_id in check_ids or ():
            self.found.setdefault(check_id, ChildResult(status, message))

    def _watch(self, process):
        """Follow one child until it ends or is killed; record what happened to its checks."""
        # ``current_since``: when the running check started, or, between checks, when the child
        # last made progress (it started, or a check finished).
        current, current_since, killed_for = None, time.monotonic(), None
        done = len(self.found)
        timeouts = self._timeouts() if self.manifest else {}
        while True:
            try:
                process.wait(timeout=POLL_SECONDS)
                finished = True
            except subprocess.TimeoutExpired:
                finished = False
            if self.manifest is None:
                manifest = _read_json(self.results / "manifest.json", limit=1024 ** 2)
                if manifest is not None and isinstance(manifest.get("questions"), list):
                    self._adopt_manifest(manifest)
                    timeouts = self._timeouts()
            check_ids = self._remaining() or []
            _collect(self.results, check_ids, self.found, self.limits)
            if finished:
                break
            now = time.monotonic()
            running = _current_check(self.results, check_ids, self.found)
            if running != current or len(self.found) != done:
                current, current_since, done = running, now, len(self.found)
            if now >= self.deadline:
                killed_for = (f"stopped: the submission used up its time budget of "
                              f"{self.limits.total_seconds:g} s")
            elif current is not None and now - current_since > timeouts.get(current, 0):
                killed_for = (f"stopped after {now - current_since:.1f} s by the grader "
                              f"(the check ignored its time limit: an endless loop?)")
            elif current is None and (now - current_since >
                                      self.limits.startup_seconds + self.limits.grace_seconds):
                killed_for = (f"the grading process made no progress for "
                              f"{self.limits.startup_seconds:g} s (starting Python and importing "
                              f"the grader and the handed-in files)")
            if killed_for:
                _kill(process)
                _collect(self.results, check_ids, self.found, self.limits)
                break
        # The check that had started but not finished (it may have begun and crashed between
        # two looks at the folder).
        current = _current_check(self.results, self._remaining() or [], self.found)
        self._after_child(process.returncode, current, killed_for)

    def _adopt_manifest(self, manifest):
        self.manifest = manifest
        if self.plan is None:
            self.plan = [f"{q.get('name')}.{c.get('name')}" for q in manifest["questions"]
                         if isinstance(q, dict) for c in q.get("checks", [])
                         if isinstance(c, dict) and c.get("kind") in self.kinds]

    def _after_child(self, returncode, current, killed_for):
        """Blame the check that was running when the child ended; stop when nothing can run."""
        why = _describe_end(returncode, killed_for)
        fatal = _read_json(self.results / "fatal.json")
        if fatal and isinstance(fatal.get("message"), str):
            why = fatal["message"][:1000]
        if self.plan is None:
            self.failure = why
        remaining = self._remaining()
        if not remaining:
            return
        current = current if current in remaining else None
        if current is not None:
            status = TIMEOUT if killed_for and "stopped" in killed_for else CRASHED
            self.found[current] = ChildResult(status, why)
        elif (self.results / "finished").exists() and not killed_for:
            # The child says it ran everything, yet results are missing: never trust it again.
            self._give_up(remaining, "the grading process finished without a result for this "
                                     "check", status=CRASHED)
        else:
            # Ended before any check started (the grader or a handed-in file at import time):
            # the same would happen again, so every remaining check gets the reason.
            if (self.results / "import.start").exists() and not fatal:
                why = f"{why}, while importing the handed-in files"
            self._give_up(remaining, why, status=CRASHED)


def run_checks(submission, kit, submission_files, plan, limits=None, kinds=("public", "hidden")):
    """Run checks of ``submission`` in a sandboxed child process; see the module docstring.

    ``kit`` is the grading kit folder (None: use the submission's own grader and files), ``plan``
    the check ids to run, in order (``"q1.relu_values"``; None: every check of the ``kinds`` that
    the child's grader lists). Returns a :class:`SandboxRun`.
    """
    if os.name != "posix":
        raise SandboxError("grading needs a POSIX system (Linux, macOS): the resource limits "
                           "that keep a submission in check do not exist here")
    limits = limits or Limits()
    root = Path(tempfile.mkdtemp(prefix="minicnn-grade-"))
    try:
        try:
            prepare_code(root / "code", Path(submission), kit and Path(kit), submission_files)
        except OSError as error:
            raise SandboxError(f"could not copy the submission into the sandbox: {error}") from None
        (root / "work").mkdir()
        run = _Run(root, list(plan) if plan is not None else None, tuple(kinds), limits)
        found, manifest = run.run()
        return SandboxRun(found, manifest, _output_tail(root / "output.txt"), run.failure)
    finally:
        shutil.rmtree(root, ignore_errors=True)
