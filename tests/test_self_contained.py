"""The repository runs by itself: no file refers to a path outside it.

A clone of the repository alone must install, run and pass its tests, so nothing may read the
team's reference folder beside the repository or climb out of the tree with `parents[N]` or a
chain of `.parent`s. Copied-in data says where it came from in a README instead.
"""

import os
import re
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
# What the tools build or download; never committed (see .gitignore).
SKIPPED_DIRS = {".git", ".venv", ".local", "var", "node_modules", "__pycache__", ".mypy_cache"}
SKIPPED_DIRS |= {".ruff_cache", ".pytest_cache", ".hypothesis"}
TEXT_SUFFIXES = {".py", ".md", ".json", ".yaml", ".yml", ".toml", ".conf", ".sh", ".txt"}
TEXT_SUFFIXES |= {".cfg", ".ini", ".html", ".js", ".css", ".example", ".jsonl", ""}

OUTSIDE_PATTERNS = (
    re.compile(r"\.\./" + "shared" + r"\b"),  # the team's reference folder beside the repository
    re.compile(r"\.\./\.\./\.\./"),  # three levels up from anywhere is outside the tree
    re.compile(r"/work/(?:shared|main)\b"),  # this machine's absolute paths
)
PARENTS_INDEX = re.compile(r"parents\[(\d+)\]((?:\.parent\b)*)")
PARENT_CHAIN = re.compile(r"__file__\)\.resolve\(\)((?:\.parent)+)")


def repository_files() -> list[Path]:
    found = []
    for path in REPO.rglob("*"):
        relative = path.relative_to(REPO)
        if any(part in SKIPPED_DIRS for part in relative.parts) or not path.is_file():
            continue
        if path.suffix in TEXT_SUFFIXES or path.name in {"Makefile", "Dockerfile", "run"}:
            found.append(path)
    return found


def outside_references(relative: Path, text: str) -> list[str]:
    """What in `text` (the content of the file at `relative`) points outside the repository."""
    problems = [m.group(0) for pattern in OUTSIDE_PATTERNS for m in pattern.finditer(text)]
    # `Path(__file__).resolve().parents[n]` is the repository root at n = depth - 1.
    deepest = len(relative.parts) - 1
    if "__file__" in text:
        for m in PARENTS_INDEX.finditer(text):
            if int(m.group(1)) + m.group(2).count(".parent") > deepest:
                problems.append(m.group(0))
        for m in PARENT_CHAIN.finditer(text):
            if m.group(1).count(".parent") - 1 > deepest:
                problems.append(m.group(0))
    return problems


def test_no_file_refers_to_a_path_outside_the_repository() -> None:
    offenders = {}
    for path in repository_files():
        relative = path.relative_to(REPO)
        if relative == Path(__file__).relative_to(REPO):
            continue  # this file spells the patterns it looks for
        problems = outside_references(relative, path.read_text(encoding="utf-8", errors="replace"))
        if problems:
            offenders[str(relative)] = problems
    assert offenders == {}


@pytest.mark.parametrize(
    ("relative", "text"),
    [
        ("services/x/settings.py", "DATA = Path(__file__).resolve().parents[" + "3] / 'x'"),
        ("tests/ingest/b.py", 'W = Path(__file__).resolve().parents[2].parent / "x"'),
        ("tests/b.py", "Path(__file__).resolve().parent.parent.parent"),
        ("docs/zalo.md", "Facts come from `.." + "/shared/reference/zalo-oa.md`."),
    ],
)
def test_the_scan_sees_each_way_out(relative: str, text: str) -> None:
    assert outside_references(Path(relative), text)


@pytest.mark.parametrize(
    ("relative", "text"),
    [
        ("services/x/settings.py", 'DATA = Path(__file__).resolve().parents[2] / "shared"'),
        ("tests/b.py", "Path(__file__).resolve().parent.parent"),
        ("shared/places/__init__.py", 'DATA_DIR = Path(__file__).resolve().parent / "data"'),
    ],
)
def test_paths_inside_the_repository_pass(relative: str, text: str) -> None:
    assert outside_references(Path(relative), text) == []


def test_no_committed_link_leads_out_of_the_repository() -> None:
    """A committed symlink to an absolute path or above the root (an engineer's worktree
    linking `.venv` to another checkout, say) would send a clone's installer elsewhere."""
    listing = subprocess.run(
        ["git", "ls-files", "-s"], cwd=REPO, capture_output=True, text=True, check=True
    ).stdout
    links = [line.split("\t", 1)[1] for line in listing.splitlines() if line.startswith("120000")]
    escaping = {}
    for link in links:
        target = os.readlink(REPO / link)
        resolved = (REPO / link).parent.joinpath(target).resolve()
        if os.path.isabs(target) or not resolved.is_relative_to(REPO):
            escaping[link] = target
    assert escaping == {}
