"""Run a submission's checks in an isolated, resource-limited process and collect its arrays.

The grading process (:func:`minicnn.assignment.grade`) never imports a student's code. For every
submission it calls :func:`run_checks`, which

* makes a private temporary folder with ``code/``: a copy of the grading kit's files without
  ``references.npz``, plus the handed-in ``SUBMISSION_FILES``, copied as plain files only
  (:mod:`~minicnn.assignment.files`: no link followed, no device, FIFO or oversize file);
* starts ``python -m minicnn.assignment.child`` (:mod:`~minicnn.assignment.child`) with a clean
  environment, **isolated by the operating system** with bubblewrap
  (:mod:`~minicnn.assignment.isolation`): its own user, PID, mount, network and IPC namespaces,
  ``code/`` read-only, a private tmpfs as working folder, nothing of the kit, the checkout or the
  grader visible. Where bubblewrap cannot run, the child runs unisolated, and every report says so
  (``require_isolation=True`` refuses instead). The child lowers its resource limits
  (:class:`Limits`) before it imports anything of the assignment;
* reads what the child sends back on a pipe (:mod:`~minicnn.assignment.channel`) as untrusted
  data: every frame's size and every array's dtype and shape are checked before anything is
  allocated, and a malformed stream stops the child and fails the check it was on. The grading
  process never opens a path inside the sandbox;
* watches the child: a check that runs past its question's ``timeout`` (plus a grace period) gets
  the child killed, and so does the whole submission when it uses up
  :attr:`Limits.total_seconds`; after a kill or a crash a new child goes on with the checks not
  yet run, so one bad check costs only itself. Killing the child kills everything it started
  (its PID namespace).

It returns :class:`ChildResult` objects; scoring is :mod:`minicnn.assignment.grade`'s business.
Only POSIX systems (Linux, macOS) have the resource limits; elsewhere :func:`run_checks` refuses.
"""
import dataclasses
import json
import math
import os
import selectors
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path, PurePosixPath

import numpy as np

from . import isolation as _isolation
from .channel import ProtocolError, Reader
from .files import HandInError, copy_regular, copy_tree, remove_tree

__all__ = ["Limits", "ChildResult", "SandboxRun", "SandboxError", "IsolationRequired",
           "run_checks", "prepare_code", "CRASHED", "NOT_RUN", "TIMEOUT", "ERROR"]

CRASHED, NOT_RUN, TIMEOUT, ERROR = "crashed", "not run", "timeout", "error"

#: Files of the grading kit never copied into the sandbox.
PRIVATE_FILES = {"references.npz"}
#: Longest wait (seconds) between two looks at the child.
POLL_SECONDS = 0.02
#: Longest output of the child (bytes, from its end) kept for the report.
OUTPUT_TAIL = 4000
#: The descriptor number the child writes its frames to.
CHANNEL_FD = 3


class SandboxError(Exception):
    """The sandbox could not be set up, or the child could not describe the grader."""


class IsolationRequired(SandboxError):
    """Isolation was required (``--require-isolation``) and bubblewrap cannot run here."""


@dataclasses.dataclass
class Limits:
    """Resource limits of one submission's grading (None: no limit of that kind).

    ``total_seconds`` is the wall-clock budget for the whole submission, all checks and restarts
    included (it also bounds the child's CPU time). ``check_seconds`` caps every question's own
    ``timeout``; ``grace_seconds`` is how much longer than its time limit a check may run before
    the grading process kills it (the child stops well-behaved checks itself, at the limit).
    ``startup_seconds`` bounds starting Python and importing the grader and the handed-in files.
    ``memory_bytes`` is the address-space limit (RLIMIT_AS; leave it None when checks use a GPU),
    ``open_files``, ``file_bytes`` (largest file the child may write) and ``processes``
    (RLIMIT_NPROC; 0: no new processes) the other limits. ``scratch_bytes`` is the size of each of
    the child's two writable tmpfs (its working folder and ``/tmp``; isolated runs only).
    ``read_paths`` are extra folders the child may read (a data set, say). ``cpu_seconds`` (None:
    the time budget's) caps the child's CPU time below that, exactly (a challenge's budget: the
    kernel kills the child at that many seconds, rounded up; no grace). ``output_bytes`` caps
    the total size of the arrays read back; ``handin_bytes`` each handed-in file and
    ``handin_total`` a whole folder copied for a student's own run.
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
    scratch_bytes: int = 256 * 1024 ** 2
    handin_bytes: int = 16 * 1024 ** 2
    handin_total: int = 64 * 1024 ** 2
    cpu_seconds: float = None

    def child_limits(self, seconds_left):
        """The numbers the child passes to ``setrlimit``."""
        cpu = max(1, int(seconds_left) + 1)
        if self.cpu_seconds is not None:
            cpu = min(cpu, max(1, math.ceil(self.cpu_seconds)))
        return {"cpu_seconds": cpu, "cpu_exact": self.cpu_seconds is not None,
                "memory_bytes": self.memory_bytes,
                "open_files": self.open_files, "file_bytes": self.file_bytes,
                "processes": self.processes}


@dataclasses.dataclass
class SandboxRun:
    """What :func:`run_checks` found out.

    ``results``: ``{check id: ChildResult}``; ``manifest``: the questions as the child's grader
    described them (untrusted; None when it sent none); ``output``: the end of what the child
    printed (raw, untrusted text); ``failure``: why the child could not even list the checks (else
    None); ``isolation``: how the child was isolated (:class:`~.isolation.Isolation`).
    """
    results: dict
    manifest: dict
    output: str
    failure: str = None
    isolation: object = None


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
    path = PurePosixPath(name)
    if path.is_absolute() or ".." in path.parts or not path.parts:
        raise SandboxError(f"SUBMISSION_FILES entry {name!r} must be a path inside the submission")
    return path


def prepare_code(code_dir, submission, kit, submission_files, limits):
    """Fill ``code_dir``: the kit's files (never ``references.npz``), then the handed-in files.

    Without a kit (students grading themselves) the whole submission folder is copied instead.
    Only plain files are copied (:mod:`~minicnn.assignment.files`); anything else raises
    :class:`~minicnn.assignment.files.HandInError`.
    """
    code_dir = Path(code_dir)
    if kit is None:
        copy_tree(submission, code_dir, limits.handin_bytes, limits.handin_total)
        return
    code_dir.mkdir()
    for path in sorted(Path(kit).iterdir()):
        if path.is_file() and path.name not in PRIVATE_FILES and not path.name.startswith("."):
            copy_regular(kit, path.name, code_dir / path.name, limits.handin_total,
                         single_link=False)
    for name in submission_files:
        relative = _safe_relative(name)
        target = code_dir / relative
        if os.path.lexists(target):
            target.unlink()                 # a kit should not hold it; the submission's wins
        copy_regular(submission, relative, target, limits.handin_bytes)


def _child_environment(home, cache, package_parent):
    """A clean environment: nothing inherited but PATH and the locale. Where CuPy is installed,
    importing minicnn imports it, and CuPy makes its kernel cache at import: ``cache``, outside
    the working folder, which stays as the submission left it."""
    return {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(home),
            "CUPY_CACHE_DIR": str(cache), "LANG": os.environ.get("LANG", "C.UTF-8"),
            "PYTHONPATH": package_parent, "PYTHONDONTWRITEBYTECODE": "1", "PYTHONUNBUFFERED": "1",
            "PYTHONNOUSERSITE": "1", "PYTHONHASHSEED": "0", "OPENBLAS_NUM_THREADS": "1",
            "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "MINICNN_NUM_THREADS": "1"}


def _describe_end(returncode, killed_for, isolated):
    """Why the child ended, in words (bubblewrap reports a child killed by signal N as 128 + N)."""
    if killed_for:
        return killed_for
    number = None
    if returncode is not None and returncode < 0:
        number = -returncode
    elif isolated and returncode is not None and returncode > 128:
        number = returncode - 128
    if number in signal.valid_signals():
        name = signal.Signals(number).name
        reasons = {"SIGKILL": " (out of memory?)", "SIGXCPU": " (CPU time limit)",
                   "SIGXFSZ": " (it wrote more than the file-size limit)",
                   "SIGSEGV": " (segmentation fault)"}
        return f"the grading process was killed by {name}{reasons.get(name, '')}"
    return (f"the grading process ended early (exit code {returncode}; "
            f"os._exit or sys.exit at import?)")


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


class _Child:
    """One started child: its process, and the two pipes the grading process reads from it.

    ``channel`` is the (read, write) pipe of its frames; the write end keeps its number in the
    child, which the job names. ``extra_fds`` are passed on too (bubblewrap's arguments).
    """

    def __init__(self, command, env, cwd, output_bytes, channel, extra_fds=()):
        channel_read, channel_write = channel
        output_read, output_write = os.pipe()
        try:
            self.process = subprocess.Popen(
                command, cwd=cwd, env=env, stdin=subprocess.DEVNULL, stdout=output_write,
                stderr=output_write, start_new_session=True, close_fds=True,
                pass_fds=(channel_write, *extra_fds))
        except BaseException:
            os.close(channel_read)
            os.close(output_read)
            raise
        finally:
            os.close(channel_write)
            os.close(output_write)
        self.reader = Reader(output_bytes)
        self.output = bytearray()
        self.channel, self.printed = channel_read, output_read
        self.selector = selectors.DefaultSelector()
        for fd in (channel_read, output_read):
            os.set_blocking(fd, False)
            self.selector.register(fd, selectors.EVENT_READ)

    def read(self, timeout):
        """Events that arrived within ``timeout`` s (raises ProtocolError); keeps the output tail."""
        events = []
        for key, _ in self.selector.select(timeout):
            try:
                data = os.read(key.fd, 1 << 16)
            except BlockingIOError:
                continue
            if not data:
                self.selector.unregister(key.fd)
            elif key.fd == self.printed:
                self.output += data
                del self.output[:-OUTPUT_TAIL]
            else:
                events += self.reader.feed(data)
        return events

    def drain(self):
        """What is left in the pipes after the child ended, without waiting: a process it left
        behind (unisolated runs only) may hold them open. Raises ProtocolError."""
        events = []
        while self.selector.get_map() and self.selector.select(0):
            events += self.read(0)
        return events

    def close(self):
        self.selector.close()
        os.close(self.channel)
        os.close(self.printed)


class _Run:
    """One submission's grading: starts children until every planned check has a result."""

    def __init__(self, root, plan, kinds, limits, isolation, hidden, questions=None, job=None):
        self.root, self.plan, self.kinds, self.limits = root, plan, kinds, limits
        self.extra_job = dict(job or {})
        self.isolation, self.hidden = isolation, hidden
        self.questions = questions    # the kit's questions (trusted), else the child's manifest
        self.found = {}
        self.manifest = None
        self.failure = None           # why the child could not list the checks (plan None only)
        self.output = b""
        self.deadline = time.monotonic() + limits.total_seconds
        package = _isolation.minicnn_package()
        self.package_parent = str(Path(package).parent)
        if isolation.isolated:
            inside = PurePosixPath(_isolation.SANDBOX)
            self.code, self.work, cache = inside / "code", inside / "work", "/tmp/cupy-cache"
            writable = [str(inside / "work"), "/tmp"]
        else:
            self.code, self.work, cache = root / "code", root / "work", root / "cupy-cache"
            writable = [str(self.work), str(cache)]
        self.env = _child_environment(self.work, cache, self.package_parent)
        self.guard = {"readable": [str(self.code), *writable, package, *_isolation.python_dirs(),
                                   *map(str, limits.read_paths)],
                      "writable": writable}

    def _job(self, remaining, channel_fd):
        left = self.deadline - time.monotonic()
        job = {"code_dir": str(self.code), "work_dir": str(self.work), "channel_fd": channel_fd,
               "checks": remaining, "kinds": list(self.kinds),
               "check_seconds": self.limits.check_seconds,
               "import_seconds": self.limits.startup_seconds,
               "limits": self.limits.child_limits(left), "python_dirs": _isolation.python_dirs(),
               **self.guard, **self.extra_job}
        path = self.root / "job.json"
        path.write_text(json.dumps(job), encoding="utf-8")
        return path

    def _start(self, remaining):
        channel = os.pipe()
        job = self._job(remaining, channel[1])
        python = [sys.executable, "-B", "-s", "-m", "minicnn.assignment.child"]
        if not self.isolation.isolated:
            leftover = remove_tree(self.work)
            if leftover:
                raise SandboxError(f"could not clear the working folder {self.work}: {leftover[0]}")
            self.work.mkdir()
            return _Child(python + [str(job)], self.env, self.work, self.limits.output_bytes,
                          channel)
        bwrap = _isolation.command(self.root / "code", job, read_paths=self.limits.read_paths,
                                   scratch_bytes=self.limits.scratch_bytes, hidden=self.hidden,
                                   tool=self.isolation.tool)
        # bubblewrap's own arguments go through a pipe (``--args``), so that the child does not
        # read them in its /proc/1/cmdline: they name the hidden folders.
        args_read, args_write = os.pipe()
        try:
            os.write(args_write, b"\0".join(os.fsencode(a) for a in bwrap[1:]) + b"\0")
        finally:
            os.close(args_write)
        try:
            return _Child([bwrap[0], "--args", str(args_read)] + python
                          + [f"{_isolation.SANDBOX}/job.json"], self.env, None,
                          self.limits.output_bytes, channel, extra_fds=(args_read,))
        finally:
            os.close(args_read)

    def _timeouts(self):
        """{check id: seconds after which the grading process kills the child}."""
        timeouts = {}
        for question in self.questions or self.manifest["questions"]:
            seconds = _seconds(question.get("timeout", 30.0))
            if self.limits.check_seconds:
                seconds = min(seconds, self.limits.check_seconds)
            for check in question["checks"]:
                timeouts[f"{question['name']}.{check['name']}"] = seconds + self.limits.grace_seconds
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
            child = self._start(remaining)
            try:
                self._watch(child)
            finally:
                _kill(child.process)
                child.close()
            if self.plan is None:                  # the child could not even list the checks
                break
        return self.found, self.manifest

    def _give_up(self, check_ids, message, status=NOT_RUN):
        for check_id in check_ids or ():
            self.found.setdefault(check_id, ChildResult(status, message))

    def _watch(self, child):
        """Follow one child until it ends or is killed; record what happened to its checks."""
        # ``since``: when the running check started, or, between checks, when the child last made
        # progress (it started, or a check finished).
        state = {"current": None, "since": time.monotonic(), "fatal": None, "finished": False,
                 "importing": False}
        killed_for, malformed = None, None
        timeouts = self._timeouts() if self.questions or self.manifest else {}
        while True:
            finished = child.process.poll() is not None
            try:
                events = child.drain() if finished else child.read(POLL_SECONDS)
                for event in events:
                    self._take(event, state)
                if finished and child.reader.partial:
                    raise ProtocolError("the last frame was cut short")
            except ProtocolError as error:
                malformed = f"the grading process sent back malformed results ({error})"
                killed_for = malformed
            if (self.questions or self.manifest) and not timeouts:
                timeouts = self._timeouts()
            if finished or killed_for:
                break
            now = time.monotonic()
            current = state["current"]
            if now >= self.deadline:
                killed_for = (f"stopped: the submission used up its time budget of "
                              f"{self.limits.total_seconds:g} s")
            elif current is not None and now - state["since"] > timeouts.get(current, 0):
                killed_for = (f"stopped after {now - state['since']:.1f} s by the grader "
                              f"(the check ignored its time limit: an endless loop?)")
            elif current is None and (now - state["since"] >
                                      self.limits.startup_seconds + self.limits.grace_seconds):
                killed_for = (f"the grading process made no progress for "
                              f"{self.limits.startup_seconds:g} s (starting Python and importing "
                              f"the grader and the handed-in files)")
        _kill(child.process)
        self.output = (self.output + bytes(child.output))[-OUTPUT_TAIL:]
        self._after_child(child.process.returncode, state, killed_for, malformed)

    def _take(self, event, state):
        """Act on one event from the child (untrusted); raises ProtocolError when it makes no sense."""
        kind = event["event"]
        remaining = self._remaining()
        if kind == "manifest":
            if self.manifest is None:
                self._adopt_manifest(event)
        elif kind == "import":
            state["importing"] = True
        elif kind == "start":
            check = event.get("check")
            if remaining is None or check not in remaining:
                raise ProtocolError(f"a start of check {str(check)[:80]!r}, which was not asked for")
            state["current"], state["since"] = check, time.monotonic()
        elif kind == "result":
            check = event.get("check")
            if remaining is None or check not in remaining:
                raise ProtocolError(f"a result for check {str(check)[:80]!r}, which was not "
                                    f"asked for or already has one")
            message = event.get("message")
            self.found[check] = ChildResult(str(event.get("status"))[:40],
                                            message[:1000] if isinstance(message, str) else "",
                                            event["outputs"])
            state["current"], state["since"] = None, time.monotonic()
        elif kind == "fatal":
            message = event.get("message")
            state["fatal"] = message[:1000] if isinstance(message, str) else "a fatal error"
        elif kind == "finished":
            state["finished"] = True
        else:
            raise ProtocolError(f"an unknown event {kind[:40]!r}")

    def _adopt_manifest(self, manifest):
        if not isinstance(manifest.get("questions"), list):
            raise ProtocolError("a manifest without a list of questions")
        try:
            for question in manifest["questions"]:
                _seconds(question.get("timeout", 30.0))
                [(str(question["name"]), str(c["name"]), c.get("kind")) for c in question["checks"]]
        except (AttributeError, KeyError, TypeError, ValueError):
            raise ProtocolError("a manifest whose questions are malformed") from None
        self.manifest = manifest
        if self.plan is None:
            self.plan = [f"{q['name']}.{c['name']}" for q in manifest["questions"]
                         for c in q["checks"] if c.get("kind") in self.kinds]

    def _after_child(self, returncode, state, killed_for, malformed):
        """Blame the check that was running when the child ended; stop when nothing can run."""
        why = _describe_end(returncode, killed_for, self.isolation.isolated)
        if state["fatal"] and not killed_for:
            why = state["fatal"]
        if self.plan is None:
            self.failure = why
        remaining = self._remaining()
        if not remaining:
            return
        current = state["current"] if state["current"] in remaining else None
        if current is not None:
            status = (ERROR if malformed else
                      TIMEOUT if killed_for and "stopped" in killed_for else CRASHED)
            self.found[current] = ChildResult(status, why)
        elif killed_for and time.monotonic() >= self.deadline:
            # The budget ran out between checks (a slow start, say): the rest simply did not run.
            self._give_up(remaining, why, status=NOT_RUN)
        elif state["finished"] and not killed_for:
            # The child says it ran everything, yet results are missing: never trust it again.
            self._give_up(remaining, "the grading process finished without a result for this "
                                     "check", status=CRASHED)
        else:
            # Ended before any check started (the grader or a handed-in file at import time), or
            # sent garbage between checks: the same would happen again, so every remaining check
            # gets the reason.
            if state["importing"] and not state["fatal"] and not malformed:
                why = f"{why}, while importing the handed-in files"
            self._give_up(remaining, why, status=ERROR if malformed else CRASHED)


def _seconds(value):
    """A question's time limit from the (untrusted) manifest, as a positive finite float."""
    seconds = float(value)
    if not 0 < seconds < float("inf"):
        raise ValueError(f"time limit {seconds}")
    return seconds


def _write_data(code_dir, data):
    """Write each ``{name: arrays}`` of ``data`` as ``code_dir/name`` (a new file: a handed-in or
    kit file of that name is refused, never replaced)."""
    for name, arrays in data.items():
        if "/" in name or not name.endswith(".npz"):
            raise SandboxError(f"data file {name!r}: expected a plain name ending in .npz")
        try:
            descriptor = os.open(code_dir / name, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW,
                                 0o644)
        except FileExistsError:
            raise SandboxError(f"the data file {name} clashes with a file of the submission or "
                               f"the kit of the same name") from None
        with os.fdopen(descriptor, "wb") as handle:
            np.savez(handle, **arrays)


def run_checks(submission, kit, submission_files, plan, limits=None, kinds=("public", "hidden"),
               require_isolation=False, hidden=(), questions=None, data=None, job=None):
    """Run checks of ``submission`` in an isolated child process; see the module docstring.

    ``kit`` is the grading kit folder (None: use the submission's own grader and files), ``plan``
    the check ids to run, in order (``"q1.relu_values"``; None: every check of the ``kinds`` that
    the child's grader lists). ``questions`` are the kit's questions as data (their time limits
    are then taken from there, not from the child). ``hidden`` are more folders the child must not
    see (the kit, the submission and the checkout always are). ``data`` (``{file name: {name:
    array}}``) are ``.npz`` files this process writes into ``code/`` before the child starts (a
    challenge's data set); ``job`` adds entries to the child's job (a challenge's settings; see
    :mod:`minicnn.assignment.challenge`). ``require_isolation`` raises
    :class:`IsolationRequired` where bubblewrap cannot run. Returns a :class:`SandboxRun`;
    a handed-in file that is not a plain file raises
    :class:`~minicnn.assignment.files.HandInError`.
    """
    if os.name != "posix":
        raise SandboxError("grading needs a POSIX system (Linux, macOS): the resource limits "
                           "that keep a submission in check do not exist here")
    limits = limits or Limits()
    isolation = _isolation.find()
    if require_isolation and not isolation.isolated:
        raise IsolationRequired(f"isolation is required, but {isolation.detail}")
    hidden = {str(Path(submission).resolve()), str(Path(_isolation.minicnn_package()).parent),
              os.path.expanduser("~"), os.getcwd(), *map(str, hidden)}
    if kit is not None:
        hidden.add(str(Path(kit).resolve()))
    root = Path(tempfile.mkdtemp(prefix="minicnn-grade-"))
    try:
        try:
            prepare_code(root / "code", Path(submission), kit and Path(kit), submission_files,
                         limits)
        except HandInError:
            raise
        except OSError as error:
            raise SandboxError(f"could not copy the submission into the sandbox: {error}") from None
        _write_data(root / "code", data or {})
        run = _Run(root, list(plan) if plan is not None else None, tuple(kinds), limits,
                   isolation, sorted(hidden), questions, job)
        found, manifest = run.run()
        return SandboxRun(found, manifest, run.output.decode("utf-8", errors="replace"),
                          run.failure, isolation)
    finally:
        leftover = remove_tree(root)
        if leftover:
            print(f"warning: the grader could not remove {len(leftover)} files of its sandbox "
                  f"{root} (first: {leftover[0]})", file=sys.stderr)
