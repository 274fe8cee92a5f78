"""The README and the docs/ pages are tested as code.

Every ```python block of README.md and docs/*.md runs, one test per block
(named by file and line): in this process with a fresh namespace, or in a
fresh interpreter when the block sets `KERAS_BACKEND` (Keras reads it once,
at its first import). A block that is not meant to run is fenced with
another language (```text, ```bash). Every fenced block names its language,
so that no unmarked code escapes the test, and every relative link points
to a file (and a heading) that exists.
"""

import os
import pathlib
import re
import subprocess
import sys
import typing
import urllib.parse

import pytest

ROOT = pathlib.Path(__file__).resolve().parent.parent
DOC_FILES = [ROOT / "README.md"] + sorted((ROOT / "docs").glob("*.md"))
PYTHON_LANGUAGES = ("python", "py")
SUBPROCESS_TIMEOUT_S = 300

_FENCE = re.compile(r"^(?P<indent>\s*)(?P<fence>`{3,}|~{3,})(?P<info>.*)$")
_LINK = re.compile(r"!?\[[^\]]*\]\(\s*<?(?P<target>[^)\s>]+)>?[^)]*\)")
_CODE_SPAN = re.compile(r"(`+).+?\1")


def _relative(path):
    return path.relative_to(ROOT).as_posix()


class Block(typing.NamedTuple):
    line: int  # the opening fence, 1-based
    end: int  # the closing fence, 1-based
    language: str  # lower case; "" when the fence names none
    code: str  # dedented by the fence's indentation (inside a list item)


def fenced_blocks(path):
    """The fenced blocks of a markdown file, as `Block`s."""
    blocks = []
    lines = path.read_text(encoding="utf-8").splitlines()
    opening = None
    for number, line in enumerate(lines, start=1):
        match = _FENCE.match(line)
        if opening is None:
            # A backtick fence's info string holds no backtick (CommonMark):
            # ```` ```python ```` in prose is a code span, not a fence.
            backticks = match and match["fence"][0] == "`"
            if match and not (backticks and "`" in match["info"]):
                info = match["info"].strip()
                language = info.split()[0].lower() if info else ""
                opening = (number, match["indent"], match["fence"], language)
                body = []
            continue
        start, indent, fence, language = opening
        if (
            match
            and match["fence"][0] == fence[0]
            and len(match["fence"]) >= len(fence)
            and not match["info"].strip()
        ):
            code = "\n".join(body) + "\n"
            blocks.append(Block(start, number, language, code))
            opening = None
        else:
            body.append(line.removeprefix(indent))
    if opening is not None:
        raise AssertionError(
            f"{_relative(path)}, line {opening[0]}: a fenced block that is "
            "never closed"
        )
    return blocks


def test_fenced_blocks_reads_fences_as_commonmark_does(tmp_path):
    page = tmp_path / "page.md"
    page.write_text(
        "```` ```python ```` opens this line as a code span.\n"
        "\n"
        "- a list item:\n"
        "\n"
        "  ```python\n"
        "  x = 1\n"
        "  ```\n"
        "\n"
        "````text\n"
        "```python\n"
        "not a block of its own\n"
        "```\n"
        "````\n"
        "\n"
        "```\n"
        "unnamed\n"
        "```\n",
        encoding="utf-8",
    )
    blocks = fenced_blocks(page)
    assert [(b.line, b.end, b.language) for b in blocks] == [
        (5, 7, "python"),
        (9, 13, "text"),
        (15, 17, ""),
    ]
    assert blocks[0].code == "x = 1\n"
    assert blocks[1].code == "```python\nnot a block of its own\n```\n"


def _sets_backend(code):
    return "KERAS_BACKEND" in code


def _python_blocks():
    params = []
    for path in DOC_FILES:
        for block in fenced_blocks(path):
            if block.language not in PYTHON_LANGUAGES:
                continue
            # A fresh interpreter (another backend) takes tens of seconds:
            # the slow tier, with the other multi-process tests.
            marks = [pytest.mark.slow] if _sets_backend(block.code) else []
            params.append(
                pytest.param(
                    block.code,
                    id=f"{_relative(path)}:{block.line}",
                    marks=marks,
                )
            )
    return params


PYTHON_BLOCKS = _python_blocks()


def test_the_readme_has_runnable_python():
    """The extraction finds the README's example (a broken extractor
    would otherwise pass every page by finding nothing)."""
    assert any(p.id.startswith("README.md:") for p in PYTHON_BLOCKS)


@pytest.mark.parametrize("code", PYTHON_BLOCKS)
def test_python_block_runs(code, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # whatever a snippet writes lands here
    if _sets_backend(code):
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(
            [str(ROOT)] + [p for p in [env.get("PYTHONPATH")] if p]
        )
        env.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
        result = subprocess.run(
            [sys.executable, "-c", code],
            cwd=tmp_path,
            env=env,
            capture_output=True,
            text=True,
            timeout=SUBPROCESS_TIMEOUT_S,
        )
        assert result.returncode == 0, result.stderr[-4000:]
    else:
        exec(compile(code, "<snippet>", "exec"), {"__name__": "__main__"})


@pytest.mark.parametrize("path", DOC_FILES, ids=_relative)
def test_every_fenced_block_names_its_language(path):
    unnamed = [b.line for b in fenced_blocks(path) if not b.language]
    assert not unnamed, (
        f"{_relative(path)}: fenced blocks without a language at lines "
        f"{unnamed}; use ```python for code that runs, ```text or ```bash "
        "for the rest"
    )


def _lines_outside_blocks(path):
    """The file's lines with every fenced block blanked out."""
    lines = path.read_text(encoding="utf-8").splitlines()
    for block in fenced_blocks(path):
        for index in range(block.line - 1, block.end):
            lines[index] = ""
    return lines


def _anchor(heading):
    """GitHub's anchor of a markdown heading's text."""
    text = heading.strip().lower().replace("`", "")
    return re.sub(r"[^\w\- ]", "", text).replace(" ", "-")


def _anchors(path):
    return {
        _anchor(line.lstrip("#"))
        for line in _lines_outside_blocks(path)
        if line.startswith("#")
    }


def relative_links(path):
    """`(line, target)` of each link that is not a URL (`scheme:...`)."""
    links = []
    lines = _lines_outside_blocks(path)
    for number, line in enumerate(lines, start=1):
        for match in _LINK.finditer(_CODE_SPAN.sub("", line)):
            target = match["target"]
            if not re.match(r"^[a-z][a-z0-9+.-]*:", target):
                links.append((number, target))
    return links


@pytest.mark.parametrize("path", DOC_FILES, ids=_relative)
def test_relative_links_point_to_existing_files(path):
    broken = []
    for line, target in relative_links(path):
        file_part, _, fragment = target.partition("#")
        file_part = urllib.parse.unquote(file_part)
        if not file_part:  # an anchor in this file
            if fragment not in _anchors(path):
                broken.append(f"line {line}: {target} (no such heading)")
            continue
        if file_part.startswith("/"):
            broken.append(f"line {line}: {target} (absolute path)")
            continue
        resolved = (path.parent / file_part).resolve()
        if ROOT not in resolved.parents and resolved != ROOT:
            broken.append(f"line {line}: {target} (outside the repository)")
        elif not resolved.exists():
            broken.append(f"line {line}: {target} (no such file)")
        elif fragment and resolved.suffix == ".md":
            if fragment not in _anchors(resolved):
                broken.append(f"line {line}: {target} (no such heading)")
    assert not broken, f"{_relative(path)}: " + "; ".join(broken)


def test_the_link_check_sees_links():
    """The README links its reports; finding none means the parser broke."""
    assert len(relative_links(ROOT / "README.md")) >= 10
