"""Each entry point runs its module once: no module it imports is also its `__main__`."""

import ast
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
# Reports, at exit, every module that is the file `__main__` ran under another name too.
REPORT = """
import atexit, sys

def _report():
    main = sys.modules.get("__main__")
    path = getattr(main, "__file__", None)
    twice = sorted(  # another module object (not an alias such as __mp_main__) of that file
        name for name, module in list(sys.modules.items())
        if module is not main and path and getattr(module, "__file__", None) == path
    )
    print(f"loaded twice: {twice}", flush=True)

atexit.register(_report)
"""


@pytest.mark.parametrize("entry", ["services.broadcast.sender", "services.broadcast"])
def test_entry_point_loads_no_module_twice(entry: str, tmp_path: Path) -> None:
    (tmp_path / "sitecustomize.py").write_text(REPORT)
    env = {k: v for k, v in os.environ.items() if k != "BINHYEN_DEV_MODE"}
    # Empty secrets: the process imports everything, then refuses to start and exits.
    env |= {"PYTHONPATH": f"{tmp_path}{os.pathsep}{ROOT}", "ZALO_APP_SECRET_KEY": ""}
    env["PSEUDONYM_KEY"] = ""
    run = subprocess.run(
        [sys.executable, "-m", entry], env=env, cwd=ROOT, capture_output=True, timeout=60
    )
    assert run.returncode != 0, "the process should have refused the empty secrets"
    assert "loaded twice: []" in run.stdout.decode(), run.stdout.decode() + run.stderr.decode()


def imports_of(path: Path, package: str, modules: set[str]) -> set[str]:
    """The modules of `package` that a module imports, at any level (type-only ones too)."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith(package):
            for alias in node.names:
                submodule = f"{node.module}.{alias.name}"
                found.add(submodule if submodule in modules else node.module)
        elif isinstance(node, ast.Import):
            found |= {a.name for a in node.names if a.name.startswith(package)}
    return found & modules


def test_broadcast_modules_import_no_cycle() -> None:
    """runtime -> handlers -> runtime (and the sender through both) was a cycle."""
    root = ROOT / "services" / "broadcast"
    paths = {
        ".".join(p.relative_to(ROOT).with_suffix("").parts).removesuffix(".__init__"): p
        for p in root.rglob("*.py")
    }
    graph = {m: imports_of(p, "services.broadcast", set(paths)) for m, p in paths.items()}
    done: set[str] = set()

    def visit(module: str, path: tuple[str, ...]) -> None:
        assert module not in path, " -> ".join([*path[path.index(module) :], module])
        if module not in done:
            for imported in graph[module]:
                visit(imported, (*path, module))
            done.add(module)

    for module in graph:
        visit(module, ())
