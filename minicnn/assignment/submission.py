"""Import a folder of student (or instructor) Python files without side effects, and time-box calls.

Two tools, used by the build (on the instructor's solution, in the build's own process) and by the
sandboxed grading process (:mod:`minicnn.assignment.child`), which runs a submission's checks. The
grading process itself never imports a submission (:mod:`minicnn.assignment.sandbox`).

* :class:`Submission` imports the top-level ``.py`` files of a folder by file path, each under a
  fresh, unique module name, inside a context that restores ``sys.path`` and ``sys.modules`` when it
  ends. Grading several submissions in one process therefore never mixes up their ``layers.py``,
  and nothing is left behind: the modules the submission imported from its own folder (``import
  gradient_check``) are removed too. A module imported earlier under the name of one of the
  folder's files (the instructor's ``layers``, say) is set aside meanwhile and put back afterwards;
  standard-library and installed modules are never set aside. No bytecode is written into the
  submission's folder.
* :func:`time_limit` stops a call that runs too long (an infinite loop in a student's code) by
  raising :class:`CheckTimeout`. It uses ``SIGALRM``, so it only works on POSIX systems and in the
  main thread; elsewhere it does nothing. A limit interrupts Python code, not a single
  long-running NumPy call, which is stopped as soon as it returns. Code that ignores the signal
  or catches :class:`CheckTimeout` is not stopped by it: when grading, the grading process kills
  the sandboxed process instead.
"""
import contextlib
import importlib
import importlib.util
import itertools
import signal
import sys
import threading
import traceback
from pathlib import Path

__all__ = ["Submission", "CheckTimeout", "SubmissionImportError", "time_limit"]

_counter = itertools.count()
_PREFIX = "_minicnn_assignment_"


class SubmissionImportError(ImportError):
    """A file of the submission could not be imported; the message says which and why, naming
    files relative to the submission."""


def _describe(error, path, folder):
    """``error``'s message, with the file named relative to ``folder`` (never the sandbox's path)."""
    if isinstance(error, SyntaxError):
        where = _relative(error.filename or str(path), folder)
        return f"{error.msg} ({where}, line {error.lineno})"
    line = ""
    for frame, number in traceback.walk_tb(error.__traceback__):
        if Path(frame.f_code.co_filename) == path:
            line = f" ({_relative(str(path), folder)}, line {number})"
    return f"{error}{line}"


def _relative(filename, folder):
    try:
        return Path(filename).resolve().relative_to(folder).as_posix()
    except (ValueError, OSError):
        return Path(filename).name


class CheckTimeout(BaseException):
    """A check ran past its time limit.

    A ``BaseException``, like ``KeyboardInterrupt``, so that a student's ``except Exception:`` in a
    loop cannot swallow it.
    """


@contextlib.contextmanager
def time_limit(seconds):
    """Raise :class:`CheckTimeout` in the body after ``seconds`` (see the module docstring)."""
    usable = (seconds and seconds > 0 and hasattr(signal, "setitimer")
              and threading.current_thread() is threading.main_thread())
    if not usable:
        yield
        return

    def on_alarm(signum, frame):
        raise CheckTimeout(f"stopped after {seconds:g} s (an endless loop?)")

    previous_handler = signal.signal(signal.SIGALRM, on_alarm)
    previous_timer, _ = signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous_handler)
        if previous_timer:                       # someone else's alarm was pending: re-arm it
            signal.setitimer(signal.ITIMER_REAL, previous_timer)


def _replaceable(name, module):
    """Whether a loaded module may be hidden while a folder's file of the same name is in use.

    Never the standard library, installed packages or packages in general: a student's
    ``random.py`` or ``numpy.py`` must not unload what the grader itself relies on.
    """
    if name in sys.stdlib_module_names or hasattr(module, "__path__"):
        return False
    parts = Path(getattr(module, "__file__", None) or "").parts
    return "site-packages" not in parts and "dist-packages" not in parts


class Submission:
    """The Python modules of an assignment folder, imported on first use: ``sub.layers``.

    ``directory`` holds the code under test. When ``provided_dir`` is given, only the modules named
    in ``submission_files`` (file names such as ``"layers.py"``) come from ``directory``; all other
    modules come from ``provided_dir`` (the grader's trusted copy of the helper files).

    Use it as a context manager; modules can only be imported inside the ``with`` block::

        with Submission("alice/") as sub:
            out, cache = sub.layers.relu_forward(x)

    A module that fails to import raises ``ImportError`` (with the original error in its message)
    on every access, without running the file again.
    """

    def __init__(self, directory, *, provided_dir=None, submission_files=None):
        self.directory = Path(directory).resolve()
        self.provided_dir = Path(provided_dir).resolve() if provided_dir else None
        self.submission_files = set(submission_files or ())
        self._modules = {}
        self._active = False

    # -- isolation --------------------------------------------------------------------------
    def _folders(self):
        folders = [self.directory]
        if self.provided_dir and self.provided_dir != self.directory:
            folders.append(self.provided_dir)
        return folders

    def __enter__(self):
        if self._active:
            raise RuntimeError("Submission is already in use")
        self._active = True
        self._saved_path = list(sys.path)
        self._saved_bytecode_flag = sys.dont_write_bytecode
        self._modules_before = set(sys.modules)
        # A module already loaded under the name of one of the folders' files (say ``layers``,
        # imported earlier from the instructor's folder) is hidden for the duration, so that
        # ``import layers`` inside the submission finds the submission's file.
        local_names = {p.stem for folder in self._folders() for p in folder.glob("*.py")}
        self._shadowed = {name: sys.modules.pop(name) for name in local_names
                          if name in sys.modules and _replaceable(name, sys.modules[name])}
        # The helpers' folder goes first: it lacks the submission files, which are then found in
        # the submission's folder, while a helper the submission also has is taken from the grader.
        sys.path[:0] = [str(folder) for folder in reversed(self._folders())]
        sys.dont_write_bytecode = True
        importlib.invalidate_caches()            # folders may have changed since the last import
        return self

    def _is_ours(self, module):
        file = getattr(module, "__file__", None)
        if not file:
            return False
        try:
            path = Path(file).resolve()
        except (OSError, ValueError):
            return False
        return any(folder == path.parent or folder in path.parents for folder in self._folders())

    def __exit__(self, *exc_info):
        for name in set(sys.modules) - self._modules_before:
            if name.startswith(_PREFIX) or self._is_ours(sys.modules[name]):
                del sys.modules[name]
        sys.modules.update(self._shadowed)
        sys.path[:] = self._saved_path
        sys.dont_write_bytecode = self._saved_bytecode_flag
        self._modules.clear()
        self._active = False
        return False

    # -- modules ----------------------------------------------------------------------------
    def path_of(self, name):
        """The file that module ``name`` is imported from."""
        filename = f"{name}.py"
        if self.provided_dir is None or filename in self.submission_files:
            return self.directory / filename
        return self.provided_dir / filename

    def module(self, name):
        """Import (once) and return module ``name`` (a top-level ``name.py``)."""
        if not self._active:
            raise RuntimeError("use the Submission inside a 'with' block")
        if name in self._modules:
            module = self._modules[name]
            if isinstance(module, ImportError):
                # A fresh error each time: the first failure's traceback (and the check it
                # happened in) must not show up in the report of every later check.
                raise SubmissionImportError(str(module)) from None
            return module
        path = self.path_of(name)
        if not path.is_file():
            error = SubmissionImportError(f"{path.name} was not handed in (it is missing)")
            self._modules[name] = error
            raise error
        module = self.load_file(path, name)
        self._modules[name] = module
        return module

    def load_file(self, path, name=None):
        """Import the file ``path`` under a fresh unique module name (not cached).

        Import failures raise ``ImportError`` and are remembered for :meth:`module`.
        """
        if not self._active:
            raise RuntimeError("use the Submission inside a 'with' block")
        path = Path(path)
        name = name or path.stem
        unique = f"{_PREFIX}{next(_counter)}_{name}"
        spec = importlib.util.spec_from_file_location(unique, path)
        module = importlib.util.module_from_spec(spec)
        sys.modules[unique] = module
        try:
            spec.loader.exec_module(module)
        except CheckTimeout as error:            # an endless loop at import time: never again
            del sys.modules[unique]
            self._modules[name] = ImportError(f"importing {path.name} {error}")
            raise
        except (Exception, SystemExit) as error:  # SyntaxError, NameError at import time, ...
            del sys.modules[unique]
            failure = SubmissionImportError(f"{path.name} could not be imported: "
                                            f"{type(error).__name__}: "
                                            f"{_describe(error, path, self.directory)}")
            self._modules[name] = failure
            raise failure from error
        return module

    def __getattr__(self, name):
        if name.startswith("_"):
            raise AttributeError(name)
        return self.module(name)

    def __repr__(self):
        return f"Submission({str(self.directory)!r})"
