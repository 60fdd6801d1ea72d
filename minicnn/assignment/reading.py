"""The reading a handout links to ships inside the handout.

An assignment's README may send students to the course's documentation
(``[docs/autograd.md](../../docs/autograd.md)``). In the instructor's checkout that link works; in
the folder students get, it would point nowhere. So the build looks at every relative link of the
handout's Markdown files and notebooks (``[text](target)`` and ``![alt](target)``):

- a link to a file **outside** the assignment folder: the file is copied into the student copy as
  ``reading/<name>``, and the link is rewritten to point there (``[docs/autograd.md](reading/
  autograd.md)``). The copied document's own relative links lead to files the student does not
  have (the framework's source, other pages); they become plain text that names the file
  (``[function.py](../minicnn/function.py)`` becomes ``function.py (`minicnn/function.py`)``), so
  nothing in the handout is a dead link;
- a link to a file **inside** the folder must lead to a file that students get: a link to
  ``notes_hidden.md`` or to a file that does not exist stops the build, naming file and line.

Links with a scheme (``https:``, ``mailto:``), absolute paths and pure anchors (``#part-2``) are
left alone.
"""
import json
import os
import re
from pathlib import Path, PurePosixPath

READING_DIR = "reading"

#: ``[text](target)`` or ``![alt](target "title")``: group ``target`` is the path (and anchor).
_LINK = re.compile(r"(?P<bang>!?)\[(?P<text>[^\]\n]*)\]\((?P<target>[^)\s]+)(?P<title>\s+\"[^\"]*\")?\)")
_CODE = re.compile(r"^(```|~~~).*?^\1[^\n]*$|`[^`\n]*`", re.MULTILINE | re.DOTALL)
_SCHEME = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*:")


class ReadingError(ValueError):
    """A link of the handout that students could not follow."""


def _local_target(target):
    """``(path, anchor)`` of a relative link, or None for URLs, absolute paths and anchors."""
    if _SCHEME.match(target) or target.startswith(("/", "#")):
        return None
    path, _, anchor = target.partition("#")
    return path, ("#" + anchor if anchor else "")


def _line_of(text, offset):
    return text.count("\n", 0, offset) + 1


def _links(text):
    """The links of a Markdown text, outside fenced code blocks and inline code."""
    code = [m.span() for m in _CODE.finditer(text)]
    return [m for m in _LINK.finditer(text) if not any(a <= m.start() < b for a, b in code)]


def _markdown_parts(rel, text):
    """``(where, markdown text)`` pieces of a handout file: a notebook's Markdown cells one by
    one (``where`` names the cell), a Markdown file whole (``where`` is None: lines are counted)."""
    if rel.suffix != ".ipynb":
        return [(None, text)]
    try:
        cells = json.loads(text)["cells"]
    except (ValueError, KeyError, TypeError):
        raise ReadingError(f"{rel}: not a notebook (its JSON has no 'cells')") from None
    return [(f"{rel}, cell {i + 1}", "".join(cell.get("source", "")))
            for i, cell in enumerate(cells) if cell.get("cell_type") == "markdown"]


def _common_root(*paths):
    return Path(os.path.commonpath([str(p) for p in paths]))


def ship_reading(src, texts, released):
    """Rewrite the links of the handout's Markdown files and notebooks.

    ``src``: the assignment folder (resolved). ``texts``: ``{relpath: text}`` of the files whose
    links are checked (the student versions of ``*.md`` and ``*.ipynb``). ``released``: the
    relpaths (POSIX strings) of every file students get. Returns ``(new_texts, reading)``:
    ``new_texts`` the rewritten texts (only those that changed) and ``reading``
    ``{relpath in the student copy: (source path, bytes)}`` for the documents to ship.
    Raises :class:`ReadingError` naming file, line and link for a link students could not follow.
    """
    shipped, reading, new_texts = {}, {}, {}
    for rel, text in sorted(texts.items()):
        rel = PurePosixPath(rel)
        rewritten = text
        for cell, markdown in _markdown_parts(rel, text):
            for match in _links(markdown):
                found = _local_target(match["target"])
                if found is None:
                    continue
                path, anchor = found
                where = cell or f"{rel}:{_line_of(markdown, match.start())}"
                target = (src / rel.parent / path).resolve()
                if target == src or src in target.parents:
                    if target.relative_to(src).as_posix() not in released:
                        raise ReadingError(f"{where}: the link to {path} leads to a file students "
                                           f"do not get (missing, hidden or left out of the release)")
                    continue
                if not target.is_file():
                    raise ReadingError(f"{where}: the link to {path} leads outside the assignment, "
                                       f"to {target}, which is not a file")
                name = shipped.get(target)
                if name is None:
                    name = f"{READING_DIR}/{target.name}"
                    if name in reading or name in released:
                        raise ReadingError(f"{where}: {path} would ship as {name}, which another "
                                           f"file already is; rename one of them")
                    reading[name] = (target, _plain_links(target, _common_root(src, target)))
                    shipped[target] = name
                relative = PurePosixPath(*[".."] * len(rel.parent.parts), name).as_posix()
                new = f"{match['bang']}[{match['text']}]({relative}{anchor}{match['title'] or ''})"
                old = match[0]
                if cell is not None:                   # the same text as it is spelled in JSON
                    old, new = json.dumps(old)[1:-1], json.dumps(new)[1:-1]
                rewritten = rewritten.replace(old, new)
        if rewritten != text:
            new_texts[str(rel)] = rewritten
    return new_texts, reading


def _plain_links(document, root):
    """A copied document's bytes, its relative links (to files the student lacks) as plain text
    naming the file from ``root`` (the folder that holds both the assignment and the document)."""
    data = document.read_bytes()
    if document.suffix.lower() not in (".md", ".markdown"):
        return data
    text = data.decode("utf-8")
    pieces, last = [], 0
    for match in _links(text):
        found = _local_target(match["target"])
        if found is None:
            continue
        linked = (document.parent / found[0]).resolve()
        name = linked.relative_to(root).as_posix() if root in linked.parents else linked.name
        pieces.append(text[last:match.start()])
        text_only = match["text"].strip("`")
        pieces.append(f"({match['text'] or 'figure'}: `{name}`)" if match["bang"]
                      else match["text"] if text_only == name else f"{match['text']} (`{name}`)")
        last = match.end()
    return ("".join(pieces) + text[last:]).encode("utf-8")
