"""Hashes of the package code that computed a result, so that no reuse outlives a code change.

Every reuse key includes one: the runner's stage fingerprint (:func:`stage_code_hash`), the difficulty
score cache (:func:`difficulty.scorer_identity`) and the finished points of the efficiency grid
(:func:`efficiency.setup_fingerprint`). Teacher answers are deliberately left out: the response cache
is keyed by backend, model, messages and decoding only, so a code change never pays the teacher twice.

What is hashed: the ``compeffdist_utils`` modules a stage's notebook imports, and every package module
those import in turn (read from the import statements with :mod:`ast`, imports inside functions
included; importing ``a.b`` runs ``a/__init__.py`` first, so it counts too), plus the package's data
files (the authors' SentiBench protocol). Modules are named dotted, relative to the package
(``difficulty_selection.scoring``). A hash of the whole
package would be simpler but would rerun stages 00-04 (embedding, clustering, the teacher stages)
after an edit of, say, the difficulty score; with the import closure, editing ``difficulty.py`` reruns
stage 05, and the runner's chained fingerprints rerun what follows. A module reached only by a dynamic
import (``importlib.import_module``) would be missed; the package has none, and a test keeps it so.
The files hashed are those of the package this process imports, which is also the one the notebook
kernels import (they inherit the environment). Explicit cache versions (``difficulty.CACHE_VERSION``)
remain for what the hash cannot see, such as a changed dependency; bump them then.
"""

from __future__ import annotations

import ast
import hashlib
import json
from collections.abc import Iterable
from pathlib import Path

PACKAGE = "compeffdist_utils"
PACKAGE_DIR = Path(__file__).resolve().parents[1]


def _module_file(name: str) -> Path | None:
    """The source of package module ``name`` (dotted, relative to the package: ``core.io``)."""
    base = PACKAGE_DIR.joinpath(*name.split("."))
    for path in (base.with_suffix(".py"), base / "__init__.py"):
        if path.is_file():
            return path
    return None


def _with_parents(name: str) -> set[str]:
    """``a.b.c`` and the packages whose ``__init__`` runs first when it is imported: ``a``, ``a.b``."""
    parts = name.split(".")
    return {".".join(parts[:i]) for i in range(1, len(parts) + 1)}


def _found(dotted: str, names: list[str]) -> set[str]:
    """The modules ``from <dotted> import <names>`` runs: ``dotted`` and each name that is a module."""
    found = {dotted} if dotted else set()
    found |= {f"{dotted}.{n}" if dotted else n for n in names if _module_file(f"{dotted}.{n}".strip("."))}
    return found


def parse_python(source: str) -> ast.Module:
    """``ast.parse``, asked once more on CPython 3.11's spurious "AST constructor recursion depth
    mismatch" SystemError (python/cpython#106905: the parse itself is fine; seen once in the suite)."""
    try:
        return ast.parse(source)
    except SystemError:
        return ast.parse(source)


def imported_modules(source: str, module: str = "") -> set[str]:
    """Package modules that ``source`` imports (dotted, relative to the package), with the packages whose
    ``__init__`` runs on the way. ``module`` names the module ``source`` is, for relative imports."""
    found: set[str] = set()
    for node in ast.walk(parse_python(source)):
        if isinstance(node, ast.Import):
            for alias in node.names:
                parts = alias.name.split(".")
                if parts[0] == PACKAGE and len(parts) > 1:
                    found.add(".".join(parts[1:]))
        elif isinstance(node, ast.ImportFrom):
            parts = (node.module or "").split(".") if node.module else []
            if node.level:
                here = module.split(".")[: -node.level] if module else []
                dotted = ".".join(here + parts)
            elif parts and parts[0] == PACKAGE:
                dotted = ".".join(parts[1:])
            else:
                continue
            found |= _found(dotted, [a.name for a in node.names])
    closed = set().union(*(_with_parents(n) for n in found)) if found else set()
    return {name for name in closed if _module_file(name) is not None}


def module_closure(roots: Iterable[str]) -> list[str]:
    """``roots`` and every package module they import, directly or not, sorted."""
    seen: set[str] = set()
    todo = [m for r in roots for m in _with_parents(r) if _module_file(m) is not None]
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        seen.add(name)
        path = _module_file(name)
        assert path is not None
        todo.extend(imported_modules(path.read_text(encoding="utf-8"), _package_of(name, path)) - seen)
    return sorted(seen)


def _package_of(name: str, path: Path) -> str:
    """The name relative imports in ``path`` resolve against (a package's ``__init__`` is its own)."""
    return f"{name}.__init__" if path.name == "__init__.py" else name


def code_hash(roots: Iterable[str]) -> str:
    """A hash of the source of ``roots``' import closure and of the package's data files."""
    h = hashlib.sha256()
    files = [_module_file(n) for n in module_closure(roots)]
    files += sorted(p for p in (PACKAGE_DIR / "data").glob("*") if p.is_file())
    for path in files:
        assert path is not None
        h.update(json.dumps(str(path.relative_to(PACKAGE_DIR))).encode())
        h.update(hashlib.sha256(path.read_bytes()).digest())
    return h.hexdigest()[:16]


def notebook_code(notebook: Path) -> str:
    """The Python of a notebook's code cells; IPython magics and shell lines are left out."""
    cells = json.loads(notebook.read_text(encoding="utf-8")).get("cells", [])
    out = []
    for cell in cells:
        if cell.get("cell_type") != "code":
            continue
        src = cell.get("source", "")
        src = "".join(src) if isinstance(src, list) else src
        out.append("\n".join(line for line in src.splitlines() if not line.lstrip().startswith(("%", "!"))))
    return "\n\n".join(out)


def stage_code_hash(notebook: Path) -> str:
    """The code hash of the package modules a stage's notebook runs (the whole package when the
    notebook's code does not parse, so an unreadable import list never means "no code")."""
    try:
        roots = imported_modules(notebook_code(notebook))
    except SyntaxError:
        roots = {
            ".".join(p.relative_to(PACKAGE_DIR).with_suffix("").parts).removesuffix(".__init__")
            for p in PACKAGE_DIR.rglob("*.py")
        }
    return code_hash(roots)
