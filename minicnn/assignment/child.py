"""The grading process: runs one submission's checks and sends their outputs back as plain arrays.

:mod:`minicnn.assignment.sandbox` starts this module for every submission, as a separate Python
process (``python -B -s -m minicnn.assignment.child JOB.json``), isolated by bubblewrap where it
can run (:mod:`minicnn.assignment.isolation`)::

    sandbox/
        code/       grader.py and the released helper files, plus the handed-in SUBMISSION_FILES
                    (read-only)
        work/       the (empty) working folder, a private tmpfs
        job.json    what to run (written by the grading process, read here once)

Results go back as frames on a pipe (:mod:`minicnn.assignment.channel`), whose descriptor the job
names; this process writes no result file. In order, this process

1. lowers its resource limits (CPU seconds, address space, open files, file size, processes);
2. installs a guard (:func:`install_guard`, a :func:`sys.addaudithook` hook) that refuses to open
   files outside the sandbox, the Python installation and the minicnn package, to write outside
   the sandbox, to start processes, to send signals, to open sockets or to load C libraries;
3. imports ``code/grader.py`` and sends the ``manifest`` event (the questions and checks, as data);
4. sends ``import`` and imports the handed-in files once (so that a crash at import shows up
   before any check);
5. runs the checks it was asked for, one after the other, each under its question's time limit:
   it sends ``start`` before a check and ``result`` (status, message, the returned arrays) after
   it; then ``finished``.

Nothing here decides a grade. Everything this process sends may have been forged by the student's
code, which runs in the same process; the grading process treats it as untrusted data
(:mod:`minicnn.assignment.grade`). The guard only gives honest students a clear message when they
reach outside (reading the references, copying the solution from a checkout); it is not the
security boundary, since code in this process can switch it off. The boundary is the operating
system's: see :mod:`minicnn.assignment.isolation` and ``docs/assignments.md``.
"""
import json
import os
import re
import sys
import traceback
from pathlib import Path


from .channel import Writer
from .questions import Question, reference_arrays
from .submission import CheckTimeout, Submission, SubmissionImportError, time_limit

__all__ = ["main", "install_guard", "set_limits", "STATUSES"]

PASSED, FAILED, ERROR, NOT_IMPLEMENTED, TIMEOUT = (
    "passed", "failed", "error", "not implemented", "timeout")
#: The statuses this process reports for a check.
STATUSES = (PASSED, FAILED, ERROR, NOT_IMPLEMENTED, TIMEOUT)

#: Longest message (characters) written for one check.
MAX_MESSAGE = 1000

# Audit events (see the "Audit events table" of the Python documentation) refused outright.
_REFUSED_EVENTS = {
    "os.fork", "os.forkpty", "os.exec", "os.posix_spawn", "os.spawn", "os.system",
    "os.startfile", "subprocess.Popen", "pty.spawn", "os.kill", "os.killpg",
    "signal.pthread_kill", "socket.__new__", "ctypes.dlopen", "sys.addaudithook",
    "os.setuid", "os.setgid", "os.chroot",
}
# Events whose first argument is a path that must lie inside the sandbox (changes to files).
_WRITE_EVENTS = {
    "os.remove", "os.rmdir", "os.mkdir", "os.rename", "os.link", "os.symlink", "os.truncate",
    "os.chmod", "os.chown", "os.utime", "os.chflags", "os.lchflags", "os.lchown",
    "shutil.copyfile", "shutil.copymode", "shutil.copystat", "shutil.copytree",
    "shutil.move", "shutil.rmtree", "shutil.chown", "os.mkfifo", "os.mknod",
}
# Events whose first argument is a path that must be readable (listing folders).
_LIST_EVENTS = {"os.listdir", "os.scandir", "glob.glob", "glob.glob/2"}
# Symbols a C library may still be asked for: BLAS and allocator tuning done by minicnn itself.
_ALLOWED_SYMBOLS = re.compile(r"num_threads|malloc_trim|mallopt|get_config|get_parallel")
_WRITE_FLAGS = os.O_WRONLY | os.O_RDWR | os.O_APPEND | os.O_CREAT | os.O_TRUNC


def set_limits(limits):
    """Lower this process's resource limits; ``limits`` maps names to numbers (None: leave).

    ``cpu_seconds`` (RLIMIT_CPU), ``memory_bytes`` (RLIMIT_AS), ``open_files`` (RLIMIT_NOFILE),
    ``file_bytes`` (RLIMIT_FSIZE) and ``processes`` (RLIMIT_NPROC: 0 means no new process or
    thread; the kernel does not enforce it for root, which is why the guard also refuses forks).
    Core dumps are switched off.
    """
    import resource        # POSIX only; the grading process checks the platform first

    def lower(kind, value, hard_extra=0):
        if value is None:
            return
        soft, hard = resource.getrlimit(kind)
        value = int(value)
        new_hard = value + hard_extra
        if hard != resource.RLIM_INFINITY:
            value, new_hard = min(value, hard), min(new_hard, hard)
        resource.setrlimit(kind, (value, new_hard))

    lower(resource.RLIMIT_CORE, 0)
    # SIGXCPU, then SIGKILL 2 s later; ``cpu_exact`` (a challenge's budget): SIGKILL at the limit.
    lower(resource.RLIMIT_CPU, limits.get("cpu_seconds"), hard_extra=0 if limits.get("cpu_exact") else 2)
    lower(resource.RLIMIT_AS, limits.get("memory_bytes"))
    lower(resource.RLIMIT_NOFILE, limits.get("open_files"))
    lower(resource.RLIMIT_FSIZE, limits.get("file_bytes"))
    if hasattr(resource, "RLIMIT_NPROC"):
        lower(resource.RLIMIT_NPROC, limits.get("processes"))


def _inside(path, roots):
    return any(path == root or path.startswith(root.rstrip(os.sep) + os.sep) for root in roots)


def install_guard(readable, writable):
    """Refuse, from now on, file access outside ``readable``/``writable`` folders (see above).

    Paths are resolved (symbolic links, ``..``, ``/proc/self/cwd``) before they are compared.
    Refused operations raise ``PermissionError``. A hook cannot be removed once installed.
    """
    readable = [os.path.realpath(p) for p in readable]
    writable = [os.path.realpath(p) for p in writable]
    own_proc = f"/proc/{os.getpid()}"
    readable = readable + writable + [own_proc]

    def resolve(path):
        if isinstance(path, int) or path is None:      # an open file descriptor: already checked
            return None
        if isinstance(path, bytes):
            path = os.fsdecode(path)
        return os.path.realpath(os.fspath(path))

    def refuse(event, detail):
        raise PermissionError(f"the grader does not allow {event} ({detail})")

    def hook(event, args):
        if event in _REFUSED_EVENTS:
            refuse(event, "not while grading")
        elif event == "open":
            path = resolve(args[0])
            if path is None:
                return
            mode, flags = (args + (None, None))[1:3]
            writing = (isinstance(flags, int) and flags & _WRITE_FLAGS) or \
                (isinstance(mode, str) and any(c in mode for c in "wax+"))
            if writing and not _inside(path, writable):
                refuse("writing", path)
            if not _inside(path, readable):
                refuse("reading", path)
        elif event in _LIST_EVENTS:
            path = resolve(args[0] if args and args[0] not in ("", None) else ".")
            if path is not None and not _inside(path, readable):
                refuse("listing", path)
        elif event in _WRITE_EVENTS:
            for argument in args[:2]:
                if isinstance(argument, (str, bytes, os.PathLike)):
                    path = resolve(argument)
                    if not _inside(path, writable):
                        refuse(event, path)
        elif event == "ctypes.dlsym":
            name = args[1] if len(args) > 1 else ""
            if not (isinstance(name, str) and _ALLOWED_SYMBOLS.search(name)):
                refuse(event, name)

    sys.addaudithook(hook)


def _innermost(error, folder):
    """``(file name, line, function)`` of the innermost frame of ``error`` in ``folder``, or None."""
    found = None
    for frame, line in traceback.walk_tb(error.__traceback__):
        path = Path(frame.f_code.co_filename)
        if folder in path.parents:          # named relative to the submission, never the sandbox
            found = (path.relative_to(folder).as_posix(), line, frame.f_code.co_name)
    return found


def _where(error, folder):
    """`` (layers.py:57 in relu_forward)``, or "" when the error did not pass through ``folder``."""
    found = _innermost(error, folder)
    return f" ({found[0]}:{found[1]} in {found[2]})" if found else ""


def run_check(question, check, sub, timeout):
    """Run one check: ``(status, message, arrays or None)``; never raises (but KeyboardInterrupt)."""
    where = question.check_id(check)
    try:
        with time_limit(timeout):
            arrays = reference_arrays(check.function(sub), where)
    except CheckTimeout as error:
        return TIMEOUT, str(error) + _where(error, sub.directory), None
    except NotImplementedError as error:
        found = _innermost(error, sub.directory)
        message = (f"{found[2]} is not implemented yet ({found[0]}:{found[1]})" if found
                   else f"NotImplementedError: {error}".rstrip(": "))
        return NOT_IMPLEMENTED, message, None
    except AssertionError as error:
        return FAILED, (str(error) or "assertion failed") + _where(error, sub.directory), None
    except SubmissionImportError as error:        # says which file and why; no check's location
        return ERROR, str(error), None
    except (Exception, SystemExit) as error:
        message = f"{type(error).__name__}: {error}{_where(error, sub.directory)}"
        if isinstance(error, MemoryError):
            message += " (the grader limits the memory a submission may use)"
        return ERROR, message, None
    return PASSED, "", arrays


def _load_questions(sub, path):
    """Import the grader and return (module, QUESTIONS); raises ImportError/TypeError."""
    grader = sub.load_file(path, "grader")
    questions = getattr(grader, "QUESTIONS", None)
    if not (isinstance(questions, (list, tuple))
            and all(isinstance(q, Question) for q in questions)):
        raise TypeError(f"{path.name} must define QUESTIONS, a list of minicnn.assignment.Question")
    return grader, list(questions)


def _run(job, channel):
    code = Path(job["code_dir"])
    with Submission(code) as sub:
        try:
            grader, questions = _load_questions(sub, code / "grader.py")
        except (ImportError, TypeError, CheckTimeout) as error:
            channel.event("fatal", message=f"could not import the grader: {error}")
            return 2
        submission_files = [str(name) for name in getattr(grader, "SUBMISSION_FILES", ())]
        channel.event("manifest", title=str(getattr(grader, "TITLE", "")),
                      submission_files=submission_files,
                      questions=[q.describe() for q in questions])
        # Import the handed-in modules once, up front; a failure is remembered by ``sub`` and
        # reported by every check that uses the module.
        channel.event("import")
        for name in submission_files:
            if name.endswith(".py") and "/" not in name:
                try:
                    with time_limit(job.get("import_seconds")):
                        sub.module(name[:-3])
                except (ImportError, CheckTimeout):
                    pass
        wanted = job.get("checks")
        kinds = job.get("kinds", ["public", "hidden"])
        cap = job.get("check_seconds")
        for question in questions:
            for check in question.checks:
                check_id = question.check_id(check)
                if (wanted is not None and check_id not in wanted) or check.kind not in kinds:
                    continue
                channel.event("start", check=check_id)
                timeout = min(question.timeout, cap) if cap else question.timeout
                status, message, arrays = run_check(question, check, sub, timeout)
                channel.result(check_id, status, message[:MAX_MESSAGE], arrays)
    channel.event("finished")
    return 0


def _challenge_check(settings, code):
    """The challenge as a check (see :mod:`minicnn.assignment.challenge`): load the data, call the
    handed-in ``train(images, labels, seconds)`` with the CPU seconds left, then the ``predict``
    it returned on the test images; returns ``{"predictions": labels, "cpu_seconds": CPU time
    used}`` (this process's own count: the kernel's limit is what enforces the budget)."""
    import time

    import numpy as np

    def train(sub):
        with np.load(code / settings["data"], allow_pickle=False) as data:
            images, labels, test_images = (data[key] for key in
                                           ("train_images", "train_labels", "test_images"))
        module = sub.module(settings["module"])
        function = getattr(module, "train", None)
        if not callable(function):
            raise TypeError(f"{settings['module']}.py must define train(images, labels, seconds)")
        seconds = float(settings["cpu_seconds"]) - time.process_time()
        predict = function(images, labels, seconds)
        if not callable(predict):
            raise TypeError(f"train must return a function predict(images) -> labels, got "
                            f"{type(predict).__name__}")
        predictions = np.asarray(predict(test_images))
        return {"predictions": predictions, "cpu_seconds": time.process_time()}

    return train


def _run_challenge(job, channel):
    """Run the challenge of the job (one "check", :data:`~minicnn.assignment.challenge.CHECK_ID`)."""
    settings, code = job["challenge"], Path(job["code_dir"])
    question = Question("challenge", "challenge", points=0, timeout=float(settings["wall_seconds"]))
    question.hidden(_challenge_check(settings, code))
    check_id = question.check_id(question.checks[0])            # "challenge.train"
    with Submission(code) as sub:
        channel.event("start", check=check_id)
        status, message, arrays = run_check(question, question.checks[0], sub, question.timeout)
        channel.result(check_id, status, message[:MAX_MESSAGE], arrays)
    channel.event("finished")
    return 0


def main(argv=None):
    """Run the job file named on the command line; returns the exit code."""
    argv = sys.argv[1:] if argv is None else argv
    job = json.loads(Path(argv[0]).read_text(encoding="utf-8"))
    channel = Writer(os.fdopen(job["channel_fd"], "wb"))
    set_limits(job.get("limits", {}))
    os.chdir(job["work_dir"])
    # A clean module search path: the Python installation only; Submission adds code/ itself.
    sys.path[:] = [p for p in sys.path if p and _inside(os.path.realpath(p), job["python_dirs"])]
    sys.dont_write_bytecode = True
    install_guard(job["readable"], job["writable"])
    if "challenge" in job:
        return _run_challenge(job, channel)
    return _run(job, channel)


if __name__ == "__main__":
    exit_code = main()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(exit_code)      # do not wait for threads a submission may have left running
