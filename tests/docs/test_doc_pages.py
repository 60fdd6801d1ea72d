"""The documentation in docs/ stays true: its links resolve and its examples run.

Conventions the pages follow (so that these tests can read them):

* a fenced block opened with ```` ```python ```` is a *runnable* example: the blocks of one page
  run in order, in one namespace, in a temporary working directory. Fragments that are not meant
  to run on their own are fenced with ```` ```py ```` instead (GitHub highlights both);
* a runnable block whose first line is ``# some_name.py`` is a file the reader is asked to save:
  it is written to the working directory instead of being executed;
* in ```` ```console ```` blocks, lines starting with ``$ minicnn `` are commands; those of
  the gradient-check walkthrough are run (in-process) and must succeed.
"""
import contextlib
import io
import os
import re
import shlex
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
DOCS = ROOT / "docs"
PAGES = sorted(DOCS.rglob("*.md"))

#: Transitional: skip (rather than fail) the CLI part while a module it imports has not landed.
ALLOW_NOT_LANDED = True

_FENCE = re.compile(r"^```([\w+-]*)[^\n]*\n(.*?)^```\s*$", re.S | re.M)
_LINK = re.compile(r"(?<!!)\[[^\]]*\]\(([^)\s]+)(?:\s+\"[^\"]*\")?\)")


def _rel(page):
    return page.relative_to(ROOT).as_posix()


def _blocks(text, lang):
    """The bodies of the fenced blocks of exactly this language, in order."""
    return [body for tag, body in _FENCE.findall(text) if tag == lang]


def _without_code(text):
    """The page with fenced blocks and inline code removed (links inside code are not links)."""
    text = _FENCE.sub("", text)
    return re.sub(r"`[^`\n]*`", "", text)


def github_anchor(heading, seen):
    """The id GitHub gives a heading: lower case, punctuation dropped, spaces -> '-', and a
    ``-1``, ``-2`` ... suffix for repeats."""
    text = re.sub(r"[`*_]|\[([^\]]*)\]\([^)]*\)", lambda m: m.group(1) or "", heading.strip())
    slug = re.sub(r"[^\w\- ]", "", text.lower()).replace(" ", "-")
    n = seen.get(slug, 0)
    seen[slug] = n + 1
    return slug if n == 0 else f"{slug}-{n}"


def anchors_of(page):
    seen, out = {}, set()
    for line in _FENCE.sub("", page.read_text(encoding="utf-8")).splitlines():
        m = re.match(r"^#{1,6}\s+(.*?)\s*#*\s*$", line)
        if m:
            out.add(github_anchor(m.group(1), seen))
    return out


def test_docs_exist():
    names = {_rel(p) for p in PAGES}
    for required in ["docs/index.md", "docs/getting-started.md", "docs/autograd.md",
                     "docs/gradcheck.md", "docs/devices.md"]:
        assert required in names


@pytest.mark.parametrize("page", PAGES, ids=_rel)
def test_relative_links_resolve(page):
    """Every relative link points to an existing file (and an existing heading, for #anchors)."""
    broken = []
    for target in _LINK.findall(_without_code(page.read_text(encoding="utf-8"))):
        if re.match(r"^[a-z][a-z0-9+.-]*:", target, re.I):  # http:, https:, mailto: ...
            continue
        path, _, anchor = target.partition("#")
        dest = (page.parent / path).resolve() if path else page
        if not dest.exists():
            broken.append(f"{target} (no file {dest.relative_to(ROOT) if ROOT in dest.parents else dest})")
        elif anchor and dest.suffix == ".md" and anchor not in anchors_of(dest):
            broken.append(f"{target} (no heading #{anchor} in {_rel(dest)})")
    assert not broken, f"{_rel(page)}: broken links:\n  " + "\n  ".join(broken)


def _run_python_blocks(page, tmp_path, monkeypatch):
    blocks = _blocks(page.read_text(encoding="utf-8"), "python")
    monkeypatch.chdir(tmp_path)
    monkeypatch.syspath_prepend(str(tmp_path))
    namespace = {"__name__": "__doc_example__"}
    written = []
    for i, code in enumerate(blocks):
        first = code.splitlines()[0].strip() if code.strip() else ""
        m = re.fullmatch(r"#\s*([\w./-]+\.py)", first)
        if m:
            (tmp_path / m.group(1)).write_text(code, encoding="utf-8")
            written.append(m.group(1))
            continue
        try:
            with contextlib.redirect_stdout(io.StringIO()):
                exec(compile(code, f"{_rel(page)}[python block {i}]", "exec"), namespace)
        except Exception as e:  # pragma: no cover - the message is the point
            pytest.fail(f"{_rel(page)}: python block {i} raised {type(e).__name__}: {e}\n{code}")
    for name in written:  # do not leak the example's modules into other tests
        sys.modules.pop(Path(name).stem, None)
    return len(blocks)


@pytest.mark.parametrize("page", [p for p in PAGES if _blocks(p.read_text(encoding="utf-8"), "python")],
                         ids=_rel)
def test_python_examples_run(page, tmp_path, monkeypatch):
    import minicnn as mc
    mc.manual_seed(0)
    assert _run_python_blocks(page, tmp_path, monkeypatch) > 0


def test_gradcheck_walkthrough(tmp_path, monkeypatch):
    """docs/gradcheck.md's walkthrough, from the saved file to the command-line checks."""
    page = DOCS / "gradcheck.md"
    text = page.read_text(encoding="utf-8")
    walkthrough = text[text.index("## Walkthrough"):]
    assert "# my_prelu.py" in walkthrough
    _run_python_blocks(page, tmp_path, monkeypatch)
    assert (tmp_path / "my_prelu.py").exists()

    # `minicnn ...` and `python -m minicnn.testing ...` (the same commands with the test devices,
    # which this test process has registered already)
    commands = [line[2:].replace("python -m minicnn.testing ", "minicnn ", 1)
                for block in _blocks(walkthrough, "console")
                for line in block.splitlines()
                if line.startswith(("$ minicnn ", "$ python -m minicnn.testing "))]
    assert len(commands) >= 2
    from minicnn.cli import build_parser, main
    try:
        build_parser()
    except ModuleNotFoundError as e:  # transitional: a sub-command's module has not landed yet
        if ALLOW_NOT_LANDED and e.name and e.name.startswith("minicnn."):
            pytest.skip(f"not landed yet: the CLI needs {e.name} (transitional; set "
                        f"ALLOW_NOT_LANDED = False to make this a failure)")
        raise
    for command in commands:
        argv = shlex.split(command)[1:]
        out = io.StringIO()
        with contextlib.redirect_stdout(out):
            rc = main(argv)
        assert rc == 0, f"`{command}` exited with {rc}:\n{out.getvalue()}"
        assert "PASS" in out.getvalue() and "FAIL" not in out.getvalue()
    sys.modules.pop("my_prelu", None)


def test_anchor_slugs():
    seen = {}
    assert github_anchor("7. Use the layer in a network, and check the network", seen) == \
        "7-use-the-layer-in-a-network-and-check-the-network"
    assert github_anchor("Why a *random* upstream gradient", seen) == "why-a-random-upstream-gradient"
    assert github_anchor("3. Write the `Function`", seen) == "3-write-the-function"
    assert github_anchor("3. Write the `Function`", seen) == "3-write-the-function-1"


# -- the summary tables pasted into docs/models/*.md still describe the models -----------------------
def _summary_blocks():
    out = []
    for page in sorted((DOCS / "models").glob("*.md")):
        for block in _blocks(page.read_text(encoding="utf-8"), "console"):
            lines = block.splitlines()
            if lines and lines[0].startswith("$ minicnn summary "):
                out.append((page, lines[0].split()[3], lines[1:]))
    return out


@pytest.fixture
def fast_init(monkeypatch):
    """Build models without drawing their (millions of) initial weights: only shapes matter here."""
    from minicnn.nn import init
    for name in dir(init):
        if name.endswith("_") and not name.startswith("_") and callable(getattr(init, name)):
            monkeypatch.setattr(init, name, lambda tensor, *args, **kwargs: tensor)


@pytest.mark.parametrize("page,model_name,table", _summary_blocks(),
                         ids=[f"{_rel(p)}:{n}" for p, n, _ in _summary_blocks()])
def test_pasted_summary_tables_match_the_models(page, model_name, table, fast_init):
    """Every row names a real leaf module of that type and parameter count, its MACs agree with its
    printed output shape, and the total is the model's parameter count."""
    from minicnn import models
    model = models.get(model_name)
    modules = dict(model.named_modules())
    rows = [line.split() for line in table
            if re.match(r"^\S+\s+[A-Z]\w+\s+[\dx, ]+\s+[\d,]+\s+[\d,]+$", line)]
    assert rows, f"{_rel(page)}: no table rows found for {model_name}"
    for row in rows:
        name, kind, shape, params, macs = row[0], row[1], row[2], row[-2], row[-1]
        params, macs = int(params.replace(",", "")), int(macs.replace(",", ""))
        assert name in modules, f"{model_name}: no module {name!r}"
        module = modules[name]
        assert type(module).__name__ == kind, f"{model_name}.{name} is a {type(module).__name__}"
        own = sum(p.numel() for p in module._parameters.values() if p is not None)
        assert own == params, f"{model_name}.{name}: {own} parameters, the page says {params}"
        out = [int(v) for v in shape.rstrip(",").split("x")]
        if kind == "Conv2d":
            c_out, cg, kh, kw = module.weight.shape
            assert macs == out[0] * out[1] * out[2] * cg * kh * kw, f"{model_name}.{name}: MACs"
        elif kind == "Linear":
            assert macs == module.weight.numel(), f"{model_name}.{name}: MACs"
    total = [line for line in table if line.startswith("Total params:")]
    assert total, f"{_rel(page)}: no 'Total params' line for {model_name}"
    assert int(total[0].split()[-1].replace(",", "")) == sum(p.numel() for p in model.parameters())
