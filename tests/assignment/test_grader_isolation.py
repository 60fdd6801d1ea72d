"""The grader against a submission that attacks it (issue 28): the operating system's isolation,
a grading process that trusts nothing it reads, and a class run that always finishes.

Each attack of the security review is here as a test. The attacks on the boundary itself (the
guard switched off, then the kit, the checkout, the grader's processes and the network reached
for) need bubblewrap and skip without it; CI installs it. After every hostile submission, a
correct one still scores full marks and the kit is byte for byte unchanged.
"""
import csv
import os
import shutil
import socket
import stat
import subprocess
import sys
import uuid
from pathlib import Path

import numpy as np
import pytest

from minicnn.assignment import Limits, cli_grade, cli_grade_all, grade, isolation
from minicnn.assignment.channel import ProtocolError, Reader, Writer
from minicnn.assignment.output import spreadsheet_safe
from minicnn.assignment.files import HandInError, copy_regular, digest, remove_tree
from minicnn.assignment.grade import GradeError, printable

from test_assignment_hostile import TINY, grade_tiny, tiny, tiny_submission  # noqa: F401

ISOLATED = isolation.find()
needs_bwrap = pytest.mark.skipif(not ISOLATED.isolated, reason=ISOLATED.detail)

#: Switches the audit-hook guard off from inside the child, as the review did: nothing may
#: depend on it.
GUARD_OFF = """
import sys
_main = sys.modules["__main__"]
_main._REFUSED_EVENTS.clear()
_main._inside = lambda *args: True
"""


@pytest.fixture
def unchanged_kit(tiny):
    """The tiny kit; after the test, its files must be exactly as before."""
    before = digest(tiny[0])
    yield tiny
    assert digest(tiny[0]) == before


@pytest.fixture
def unisolated(monkeypatch):
    """Grading as on a machine without bubblewrap."""
    fallback = isolation.Isolation(None, "bubblewrap is not installed (a test)")
    monkeypatch.setattr(isolation, "find", lambda tool=None: fallback)
    return fallback


# ----------------------------------------------------------------------------------------------
# The boundary is the operating system's, not the guard's
# ----------------------------------------------------------------------------------------------

def test_the_guard_can_be_switched_off_and_it_does_not_matter(unchanged_kit, tmp_path):
    code = GUARD_OFF + """
import numpy as np
_tries = []
def double(x):
    try:
        open("/etc/hostname").read()
        _tries.append("hostname read")
    except OSError as error:
        _tries.append(type(error).__name__)
    raise AssertionError("guard off; " + ", ".join(_tries))
count = double
"""
    report, checks = grade_tiny(unchanged_kit, tiny_submission(tmp_path / "off", code))
    assert report.earned == 0
    # Without the guard, the read reaches the OS; isolated, /etc/hostname is not even there.
    assert "guard off" in checks["small"][1]
    if ISOLATED.isolated:
        assert "FileNotFoundError" in checks["small"][1]


STEAL = GUARD_OFF + """
import ctypes
import glob
import os

_LEAKS = []
def _try(what, read, secret=None):
    try:
        data = read()
        if data and (secret is None or secret.encode() in data):
            _LEAKS.append(what)
            print("LEAKED", what, data[:60])
        else:
            print("blocked", what, "(nothing secret)")
    except Exception as error:
        print("blocked", what, type(error).__name__)

_kit = {kit!r}
_checkout = {checkout!r}
_try("kit", lambda: open(_kit + "/references.npz", "rb").read())
_try("solution", lambda: open(_checkout + "/assignments/assignment1/layers.py").read())
_try("parent cmdline", lambda: open("/proc/%d/cmdline" % os.getppid(), "rb").read(), _kit)
_try("parent environ", lambda: open("/proc/%d/environ" % os.getppid(), "rb").read(), "hunter2")
_try("pid 1 environ", lambda: open("/proc/1/environ", "rb").read(), "hunter2")
_try("own environ secret",
     lambda: os.environ.get("MINICNN_TEST_SECRET") or
             (b"MINICNN_TEST_SECRET" in open("/proc/self/environ", "rb").read() and b"found"))
_try("dir_fd", lambda: os.read(os.open("../%d/cwd/references.npz" % os.getppid(), os.O_RDONLY,
                                       dir_fd=os.open("/proc/self", os.O_RDONLY)), 100))
_try("libc open", lambda: ctypes.CDLL(None).open((_kit + "/references.npz").encode(), 0) >= 0
                          and "opened")
_try("glob", lambda: [path for top in ("/sandbox", "/tmp", os.path.dirname(_kit))
                      for path in glob.glob(top + "/**/references.npz", recursive=True)])
_try("home", lambda: os.listdir(os.path.expanduser("~root")))
_try("other processes", lambda: [p for p in os.listdir("/proc") if p.isdigit() and int(p) > 3])
"""


@needs_bwrap
def test_nothing_outside_the_sandbox_can_be_read_with_the_guard_off(unchanged_kit, tmp_path,
                                                                     monkeypatch):
    monkeypatch.setenv("MINICNN_TEST_SECRET", "hunter2")
    checkout = Path(__file__).resolve().parents[2]
    code = STEAL.format(kit=str(unchanged_kit[0]), checkout=str(checkout))
    code += "\ndef double(x):\n    raise AssertionError(repr(_LEAKS))\ncount = double\n"
    report, checks = grade_tiny(unchanged_kit, tiny_submission(tmp_path / "thief", code))
    assert report.earned == 0
    assert "LEAKED" not in report.output and checks["small"][1].startswith("[]"), report.output
    assert report.output.count("blocked") == 11
    assert "hunter2" not in report.output


@needs_bwrap
def test_a_daemon_started_without_an_audit_event_does_not_survive(unchanged_kit, tmp_path):
    marker = f"minicnn-daemon-{uuid.uuid4().hex}"
    # As root, RLIMIT_NPROC is not enforced outside a user namespace: ``processes=None`` plays
    # that, and the guard is off, so the double fork below succeeds.
    code = GUARD_OFF + f"""
import os
def double(x):
    if os.fork() == 0:
        os.setsid()
        if os.fork() == 0:
            os.execv("/bin/sh", ["/bin/sh", "-c", "sleep 30; : {marker}"])
        os._exit(0)
    return 2 * x
count = double
"""
    report, _ = grade_tiny(unchanged_kit, tiny_submission(tmp_path / "daemon", code),
                           Limits(total_seconds=30, check_seconds=2, grace_seconds=0.3,
                                  startup_seconds=30, memory_bytes=1024 ** 3, processes=None))
    alive = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            if marker.encode() in Path(f"/proc/{pid}/cmdline").read_bytes():
                alive.append(pid)
        except OSError:
            pass
    assert alive == []


@needs_bwrap
def test_there_is_no_network(unchanged_kit, tmp_path):
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(1)
    server.settimeout(0.1)
    port = server.getsockname()[1]
    code = GUARD_OFF + f"""
import socket
def double(x):
    try:
        socket.create_connection(("127.0.0.1", {port}), timeout=1).sendall(b"marks")
        raise AssertionError("CONNECTED")
    except OSError as error:
        raise AssertionError("no network: " + type(error).__name__)
count = double
"""
    report, checks = grade_tiny(unchanged_kit, tiny_submission(tmp_path / "net", code))
    with pytest.raises(socket.timeout):
        server.accept()
    server.close()
    assert "no network" in checks["small"][1]


@needs_bwrap
def test_the_child_runs_as_nobody_in_a_read_only_tree(unchanged_kit, tmp_path):
    code = GUARD_OFF + """
import os
def double(x):
    wrote = []
    for path in ("/sandbox/code/grader.py", "/sandbox/job.json", "/usr/x", "/x", "work.txt",
                 "/tmp/t.txt"):
        try:
            with open(path, "a") as handle:
                handle.write("x")
            wrote.append(path)
        except OSError:
            pass
    raise AssertionError(f"uid {os.getuid()} wrote {wrote}")
count = double
"""
    _, checks = grade_tiny(unchanged_kit, tiny_submission(tmp_path / "writer", code))
    assert "uid 65534 wrote ['work.txt', '/tmp/t.txt']" in checks["small"][1]


@needs_bwrap
def test_filling_the_scratch_space_costs_only_that_check(unchanged_kit, tmp_path):
    code = """
def double(x):
    with open("/tmp/fill", "wb") as handle:
        for _ in range(64):
            handle.write(b"0" * 2 ** 20)
count = double
"""
    limits = Limits(total_seconds=30, check_seconds=2, grace_seconds=0.3, startup_seconds=30,
                    memory_bytes=1024 ** 3, scratch_bytes=4 * 2 ** 20)
    _, checks = grade_tiny(unchanged_kit, tiny_submission(tmp_path / "fill", code), limits)
    assert checks["small"][0] == "error" and "No space left" in checks["small"][1]


# ----------------------------------------------------------------------------------------------
# What comes back is checked before it is used
# ----------------------------------------------------------------------------------------------

def _frames(kind, payload):
    return kind + len(payload).to_bytes(4, "big") + payload


@pytest.mark.parametrize("stream, words", [
    (_frames(b"X", b"{}"), "unexpected frame kind"),
    (_frames(b"J", b"not json"), "not JSON"),
    (_frames(b"J", b"[1, 2]"), "without a name"),
    (b"J" + (2 ** 31).to_bytes(4, "big"), "at most"),
    (_frames(b"A", b"\0" * 8), "unexpected frame kind"),
    (_frames(b"J", b'{"event": "result", "arrays": [{"name": "y", "dtype": "<f8", '
                   b'"shape": [16384, 16384]}]}'), "more than the"),
    (_frames(b"J", b'{"event": "result", "arrays": [{"name": "y", "dtype": "|O", '
                   b'"shape": [1]}]}'), "not a plain numeric type"),
    (_frames(b"J", b'{"event": "result", "arrays": [{"name": "y", "dtype": "<f8", '
                   b'"shape": [-1]}]}'), "not a list of sizes"),
    (_frames(b"J", b'{"event": "result", "arrays": [{"name": "y", "dtype": "<f8", '
                   b'"shape": [2]}]}') + _frames(b"A", b"\0" * 8), "8 bytes for 16"),
    (_frames(b"J", b'{"event": "result", "arrays": [{"name": "y", "dtype": "<f8", "shape": []},'
                   b'{"name": "y", "dtype": "<f8", "shape": []}]}'), "listed twice"),
])
def test_the_reader_refuses_malformed_frames_before_allocating(stream, words):
    with pytest.raises(ProtocolError, match=words):
        Reader(output_bytes=2 ** 20).feed(stream)


def test_the_reader_takes_what_the_writer_writes_in_any_pieces(tmp_path):
    path = tmp_path / "frames"
    with open(path, "wb") as handle:
        writer = Writer(handle)
        writer.event("start", check="q.a")
        writer.result("q.a", "passed", "", {"loss": np.float64(2.5), "x": np.arange(6).reshape(2, 3),
                                            "t": np.ones((2, 2), bool)[:, ::-1]})
        writer.result("q.b", "failed", "wrong", None)
    data, reader, events = path.read_bytes(), Reader(2 ** 20), []
    for start in range(0, len(data), 7):                       # as a pipe may cut it
        events += reader.feed(data[start:start + 7])
    assert not reader.partial
    assert [e["event"] for e in events] == ["start", "result", "result"]
    outputs = events[1]["outputs"]
    assert outputs["loss"].shape == () and outputs["loss"] == 2.5
    np.testing.assert_array_equal(outputs["x"], np.arange(6).reshape(2, 3))
    assert outputs["t"].dtype == bool and events[2]["outputs"] is None


FORGE = """
import os
import stat
_pipes = []
for _fd in map(int, os.listdir("/proc/self/fd")):
    try:
        if _fd > 2 and stat.S_ISFIFO(os.fstat(_fd).st_mode):
            _pipes.append(_fd)
    except OSError:
        pass
def double(x):
    for _fd in _pipes:
        try:
            os.write(_fd, {payload})
        except OSError:
            pass
    return 2 * x
count = double
"""


@pytest.mark.parametrize("payload", [
    'b"J" + (2 ** 31).to_bytes(4, "big")',                          # a 2 GB event
    'b"J\\0\\0\\0\\x50" + b\'{"event": "result", "check": "q1.small", "arrays": [{"name": "y", '
    '"dtype": "<f8", "shape": [50000, 50000]}]}\'',                    # a 20 GB array declared
    'b"\\0" * 2 ** 16',                                               # garbage
    'b"J\\0\\0\\0\\x10" + b\'{"event": "zap"}\'',                     # an unknown event
])
def test_forged_frames_fail_that_submission_only(unchanged_kit, tmp_path, payload):
    code = FORGE.format(payload=payload)
    report, checks = grade_tiny(unchanged_kit, tiny_submission(tmp_path / "forger", code))
    assert checks["small"][0] == "error" and "malformed results" in checks["small"][1]
    assert report.earned < 3


def test_an_endless_stream_of_output_is_cut_to_its_tail(unchanged_kit, tmp_path):
    code = """
import sys
def double(x):
    while True:
        sys.stdout.write("\\x1b[2J" + "spam " * 100)
count = double
"""
    limits = Limits(total_seconds=30, check_seconds=1, grace_seconds=0.3, startup_seconds=30,
                    memory_bytes=1024 ** 3)
    report, checks = grade_tiny(unchanged_kit, tiny_submission(tmp_path / "spam", code), limits)
    assert checks["small"][0] == "timeout" and len(report.output) <= 4000
    assert "\x1b" not in report.format() and "\\x1b[2J" in report.format()


# ----------------------------------------------------------------------------------------------
# Hand-ins: plain files only
# ----------------------------------------------------------------------------------------------

def _file(path):
    path.write_text("x = 1\n")
    return path


@pytest.mark.parametrize("make, words", [
    (lambda path, kit: path.symlink_to(kit / "references.npz"), "symbolic link"),
    (lambda path, kit: path.symlink_to("/proc/self/environ"), "symbolic link"),
    (lambda path, kit: os.mkfifo(path), "FIFO"),
    (lambda path, kit: path.mkdir(), "a folder"),
    (lambda path, kit: os.link(_file(path.parent / ".." / "elsewhere.py"), path), "hard link"),
    (lambda path, kit: os.truncate(_file(path), 2 ** 40), "more than"),        # sparse, 1 TiB
])
def test_a_hand_in_that_is_not_a_plain_file_is_refused(unchanged_kit, tmp_path, capsys, make,
                                                       words):
    folder = tmp_path / "linker"
    folder.mkdir()
    make(folder / "mod.py", unchanged_kit[0])
    assert cli_grade(folder, str(unchanged_kit[0])) == 1
    error = capsys.readouterr().err
    assert "refused the hand-in" in error and "mod.py" in error and words in error
    assert len(error.strip().splitlines()) == 1
    assert grade_tiny(unchanged_kit, unchanged_kit[1])[0].earned == 3


def test_a_folder_on_the_hand_ins_path_is_not_followed_either(tmp_path):
    (tmp_path / "real").mkdir()
    (tmp_path / "real" / "layers.py").write_text("secret")
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "pkg").symlink_to(tmp_path / "real")
    with pytest.raises(HandInError, match="symbolic link"):
        copy_regular(tmp_path / "sub", "pkg/layers.py", tmp_path / "out.py", 100)
    assert not (tmp_path / "out.py").exists()
    assert copy_regular(tmp_path / "real", "missing.py", tmp_path / "out.py", 100) is False


def test_a_students_own_folder_with_a_link_is_refused(tiny, tmp_path):
    folder = tmp_path / "own"
    shutil.copytree(tiny[0], folder)
    (folder / "references.npz").unlink()
    (folder / "mod.py").write_text((tiny[1] / "mod.py").read_text())
    (folder / "notes.txt").symlink_to("/etc/passwd")
    with pytest.raises(GradeError, match="notes.txt: it or a folder on its path is a symbolic"):
        grade(folder, quiet=True, limits=TINY)


# ----------------------------------------------------------------------------------------------
# Cleaning up after anything
# ----------------------------------------------------------------------------------------------

def test_the_sandbox_is_removed_whatever_the_submission_left(unchanged_kit, tmp_path,
                                                            monkeypatch):
    code = """
import os
def double(x):
    os.makedirs("locked/deeper")
    open("locked/deeper/f", "w").write("x")
    os.mkfifo("fifo")
    os.symlink("fifo", "link")
    os.chmod("locked/deeper", 0)
    os.chmod("locked", 0)
    return 2 * x
count = double
"""
    from minicnn.assignment import sandbox
    made, real_mkdtemp = [], sandbox.tempfile.mkdtemp
    monkeypatch.setattr(sandbox.tempfile, "mkdtemp",
                        lambda **kw: made.append(real_mkdtemp(**kw)) or made[-1])
    grade_tiny(unchanged_kit, tiny_submission(tmp_path / "litter", code))
    assert len(made) == 2                                          # the litterer, then the solution
    assert not any(os.path.lexists(path) for path in made)


def test_remove_tree_clears_unreadable_and_immutable_files(tmp_path):
    root = tmp_path / "sandbox"
    (root / "a" / "b").mkdir(parents=True)
    (root / "a" / "b" / "file").write_text("x")
    (root / "link").symlink_to("/etc")
    os.chmod(root / "a" / "b", 0)
    os.chmod(root / "a", 0)
    pinned = tmp_path / "sandbox" / "pinned"
    pinned.write_text("x")
    chattr = shutil.which("chattr")
    immutable = bool(chattr) and subprocess.run([chattr, "+i", str(pinned)],
                                                capture_output=True).returncode == 0
    assert remove_tree(root) == [] and not root.exists()
    assert Path("/etc").is_dir()
    if not immutable:
        pytest.skip("chattr +i is not possible here (not root, or the file system has no flags)")


# ----------------------------------------------------------------------------------------------
# What reaches the instructor's terminal and spreadsheet
# ----------------------------------------------------------------------------------------------

def test_escape_codes_and_fake_totals_are_shown_as_text(unchanged_kit, tmp_path):
    code = """
import sys
print("\\x1b[2J\\x1b]0;owned\\x07\\rtotal    3 / 3  100.0%")
def double(x):
    raise AssertionError("wrong\\ntotal                3 / 3  100.0%\\x1b[1A")
count = double
"""
    report, _ = grade_tiny(unchanged_kit, tiny_submission(tmp_path / "liar", code))
    text = report.format()
    assert "\x1b" not in text and "\r" not in text and "\x07" not in text
    totals = [line for line in text.splitlines() if line.startswith("total")]
    assert totals == [totals[-1]] and totals[0].split()[1] == "0"
    assert "wrong\\ntotal" in text and "\\x1b[2J" in text


def test_printable_escapes_every_control():
    assert printable("a\x1b[31mb\u202ec\u2028d\x00\x85") == "a\\x1b[31mb\\u202ec\\u2028d\\x00\\x85"
    assert printable("one\ntwo", one_line=False) == "one\ntwo"
    assert printable("one\ntwo") == "one\\ntwo"


@pytest.mark.parametrize("cell, safe", [
    ("=HYPERLINK(\"http://x\")", "'=HYPERLINK(\"http://x\")"), ("+1", "'+1"), ("-2", "'-2"),
    ("@SUM(A1)", "'@SUM(A1)"), ("\tx", "'\tx"), ("alice", "alice"), ("", ""),
])
def test_spreadsheet_formulas_are_escaped(cell, safe):
    assert spreadsheet_safe(cell) == safe


# ----------------------------------------------------------------------------------------------
# A class run always finishes
# ----------------------------------------------------------------------------------------------

def test_a_hostile_class_is_graded_to_the_end(unchanged_kit, tmp_path, capsys):
    kit, solution = unchanged_kit
    room = tmp_path / "class"
    shutil.copytree(solution, room / "alice", ignore=shutil.ignore_patterns("grader.py"))
    shutil.copytree(solution, room / "=cmd|' -C calc'!A0",
                    ignore=shutil.ignore_patterns("grader.py"))
    (room / "mallory").mkdir()
    os.mkfifo(room / "mallory" / "mod.py")
    (room / "linked").symlink_to(room / "alice")
    (room / "oscar").mkdir()
    (room / "oscar" / "mod.py").write_text("import os\nos._exit(3)\n")
    marks = tmp_path / "marks.csv"
    assert cli_grade_all(room, kit, marks, limits=TINY) == 3
    rows = {row["student"]: row for row in csv.DictReader(marks.open())}
    assert set(rows) == {"alice", "'=cmd|' -C calc'!A0", "mallory", "linked", "oscar"}
    assert rows["alice"]["automatic total"] == "3" and rows["alice"]["complete"] == "yes"
    assert rows["'=cmd|' -C calc'!A0"]["automatic total"] == "3"
    assert "FIFO" in rows["mallory"]["complete"] and "symbolic link" in rows["linked"]["complete"]
    assert rows["oscar"]["complete"] == "no"
    printed = capsys.readouterr().out
    assert "graded 3 of 5 submissions" in printed and "not graded: mallory" in printed


@pytest.mark.parametrize("where", ["folder", "file parent"])
def test_an_unwritable_csv_is_refused_before_anyone_is_graded(tiny, tmp_path, capsys, where):
    room = tmp_path / "class"
    shutil.copytree(tiny[1], room / "alice")
    (tmp_path / "a_file").write_text("")
    target = tmp_path / "a_dir" if where == "folder" else tmp_path / "a_file" / "marks.csv"
    if where == "folder":
        target.mkdir()
    assert cli_grade_all(room, tiny[0], target, limits=TINY) == 1
    captured = capsys.readouterr()
    assert "cannot write the CSV file" in captured.err and "alice" not in captured.out


def test_rows_are_saved_as_each_student_finishes(tiny, tmp_path, monkeypatch):
    """A class run stopped half-way keeps what it graded."""
    from minicnn.assignment import classroom
    room = tmp_path / "class"
    for name in ("a", "b", "c"):
        shutil.copytree(tiny[1], room / name, ignore=shutil.ignore_patterns("grader.py"))
    marks = tmp_path / "marks.csv"
    real_grade, calls = classroom.grade, []

    def stopping_grade(folder, *args, **kwargs):
        calls.append(folder.name)
        if folder.name == "c":
            raise KeyboardInterrupt
        return real_grade(folder, *args, **kwargs)

    monkeypatch.setattr(classroom, "grade", stopping_grade)
    with pytest.raises(KeyboardInterrupt):
        classroom.grade_folder(room, tiny[0], marks, limits=TINY, log=lambda *a: None)
    assert [row["student"] for row in csv.DictReader(marks.open())] == ["a", "b"]


def test_a_bug_of_the_grader_costs_one_row(tiny, tmp_path, monkeypatch):
    from minicnn.assignment import classroom
    room = tmp_path / "class"
    for name in ("a", "b"):
        shutil.copytree(tiny[1], room / name, ignore=shutil.ignore_patterns("grader.py"))
    real_grade = classroom.grade

    def buggy(folder, *args, **kwargs):
        if folder.name == "a":
            raise ZeroDivisionError("a bug")
        return real_grade(folder, *args, **kwargs)

    monkeypatch.setattr(classroom, "grade", buggy)
    marks = tmp_path / "marks.csv"
    results = classroom.grade_folder(room, tiny[0], marks, limits=TINY, log=lambda *a: None)
    assert [r is None for _, r in results] == [True, False]
    rows = list(csv.DictReader(marks.open()))
    assert "the grader failed (ZeroDivisionError: a bug" in rows[0]["complete"]


def test_a_changed_kit_stops_the_class_run(tmp_path, tiny, monkeypatch):
    import importlib
    grade_module = importlib.import_module("minicnn.assignment.grade")
    kit = tmp_path / "kit"
    shutil.copytree(tiny[0], kit)
    room = tmp_path / "class"
    for name in ("a", "b"):
        shutil.copytree(tiny[1], room / name, ignore=shutil.ignore_patterns("grader.py"))
    real_run = grade_module.run_checks

    def tamper(*args, **kwargs):
        (kit / "extra.py").write_text("x = 1\n")          # as if a submission had reached it
        return real_run(*args, **kwargs)

    monkeypatch.setattr(grade_module, "run_checks", tamper)
    assert cli_grade_all(room, kit, tmp_path / "m.csv", limits=TINY) == 1
    rows = list(csv.DictReader((tmp_path / "m.csv").open()))
    assert len(rows) == 1 and "changed while a was graded (extra.py)" in rows[0]["complete"]


# ----------------------------------------------------------------------------------------------
# Without bubblewrap: it still grades, and says so everywhere
# ----------------------------------------------------------------------------------------------

def test_without_bubblewrap_every_report_says_so(tiny, tmp_path, capsys, unisolated):
    report = grade(tiny[1], tiny[0], quiet=True, limits=TINY)
    assert report.earned == 3 and not report.isolated
    text = report.format()
    assert text.count("NOT ISOLATED") == 2 and "bubblewrap is not installed" in text
    room = tmp_path / "class"
    shutil.copytree(tiny[1], room / "alice", ignore=shutil.ignore_patterns("grader.py"))
    assert cli_grade_all(room, tiny[0], tmp_path / "m.csv", limits=TINY) == 0
    assert capsys.readouterr().out.count("NOT ISOLATED") == 2
    assert next(csv.DictReader((tmp_path / "m.csv").open()))["isolated"] == "NO"


def test_require_isolation_refuses_without_bubblewrap(tiny, tmp_path, capsys, unisolated):
    assert cli_grade(tiny[1], str(tiny[0]), require_isolation=True) == 1
    assert "isolation is required, but bubblewrap is not installed" in capsys.readouterr().err
    room = tmp_path / "class"
    shutil.copytree(tiny[1], room / "alice", ignore=shutil.ignore_patterns("grader.py"))
    assert cli_grade_all(room, tiny[0], tmp_path / "m.csv", require_isolation=True) == 1
    assert not (tmp_path / "m.csv").exists()


def test_unisolated_grading_still_judges_forged_frames(tiny, tmp_path, unisolated):
    code = FORGE.format(payload='b"J" + (2 ** 31).to_bytes(4, "big")')
    report, checks = grade_tiny(tiny, tiny_submission(tmp_path / "forger", code))
    assert checks["small"][0] == "error" and "malformed results" in checks["small"][1]


@needs_bwrap
def test_a_package_under_tmp_is_still_seen(tmp_path, monkeypatch):
    """The sandbox's own /tmp must not hide a clone (or a kit's code) under the host's /tmp."""
    clone = tmp_path / "clone"
    shutil.copytree(Path(isolation.minicnn_package()), clone / "minicnn",
                    ignore=shutil.ignore_patterns("__pycache__"))
    monkeypatch.setattr(isolation, "minicnn_package", lambda: str(clone / "minicnn"))
    (tmp_path / "code").mkdir()
    (tmp_path / "job.json").write_text("{}")
    command = isolation.command(tmp_path / "code", tmp_path / "job.json", scratch_bytes=2 ** 20,
                                hidden=[str(tmp_path)], tool=ISOLATED.tool)
    done = subprocess.run(command + [sys.executable, "-c", "import minicnn, os; "
                                     "print(minicnn.__file__, sorted(os.listdir('/sandbox')))"],
                          env={"PYTHONPATH": str(clone), "PATH": os.environ["PATH"]},
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == [str(clone / "minicnn" / "__init__.py"), "['code',", "'job.json',",
                                   "'work']"]


@needs_bwrap
def test_isolation_is_reported_when_it_holds(tiny):
    report = grade(tiny[1], tiny[0], quiet=True, limits=TINY)
    assert report.isolated and "bubblewrap" in report.isolation and "WARNING" not in report.format()
    assert stat.S_ISDIR(os.stat(tiny[0]).st_mode)
