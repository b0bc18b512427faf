"""Which library source files a workflow stage runs: the modules an entry module imports, transitively.

The workflow lists these files as inputs of the stage's rule, so editing e.g. ``puad.py`` reruns the
PUAD jobs and nothing else, while editing a module every stage uses (``data/table.py``) reruns all.
Snakemake's own ``code`` trigger sees only the rule's script, not the library behind it.

Imports are found statically (``ast``), including those inside functions (the library imports heavy
modules lazily) and the ``__init__`` of every package on the way; nothing is imported. A package whose
``__getattr__`` imports its exports on first use declares them as a literal ``_EXPORTS = {name:
submodule}`` (:mod:`anomalyflow.efficientad`), and ``from package import name`` counts as importing that
submodule. Modules loaded by a name computed at run time (a dataset layout's reader, a model family's
class) cannot be found here: the workflow's rules name them, from the library's tables.
"""

from __future__ import annotations

import ast
import functools
import os
from pathlib import Path

PACKAGE = "anomalyflow"


def module_file(module: str, package_dir: Path) -> Path | None:
    """``anomalyflow.x.y`` → ``<package_dir>/x/y.py`` or ``<package_dir>/x/y/__init__.py``."""
    parts = module.split(".")[1:]
    base = package_dir.joinpath(*parts)
    for candidate in (base.with_suffix(".py"), base / "__init__.py"):
        if candidate.is_file():
            return candidate
    return None


def _imported_modules(path: Path, module: str) -> set[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:  # relative import
                anchor = package.split(".")
                base = ".".join(anchor[: len(anchor) - node.level + 1])
                target = f"{base}.{node.module}" if node.module else base
            else:
                target = node.module or ""
            found.add(target)
            # `from anomalyflow.data import images` imports a module, not just a name.
            found.update(f"{target}.{alias.name}" for alias in node.names)
    return {name for name in found if name == PACKAGE or name.startswith(PACKAGE + ".")}


@functools.cache
def _lazy_exports(init: Path) -> dict[str, str]:
    """A package's ``_EXPORTS`` (attribute name → submodule its ``__getattr__`` imports), or {}."""
    for node in ast.parse(init.read_text(), filename=str(init)).body:
        if isinstance(node, ast.Assign) and any(getattr(t, "id", None) == "_EXPORTS" for t in node.targets):
            return dict(ast.literal_eval(node.value))
    return {}


@functools.cache
def _closure(modules: tuple[str, ...], package_dir: str) -> tuple[str, ...]:
    root = Path(package_dir)
    pending, seen, files = list(modules), set(), set()
    while pending:
        module = pending.pop()
        if module in seen:
            continue
        seen.add(module)
        parts = module.split(".")
        # Importing a.b.c runs a/__init__.py and a/b/__init__.py first.
        pending.extend(".".join(parts[:i]) for i in range(1, len(parts)))
        path = module_file(module, root)
        if path is None:
            # Not a module: maybe `from package import name` of a name the package exports lazily.
            parent, _, name = module.rpartition(".")
            init = module_file(parent, root) if parent else None
            if init is not None and init.name == "__init__.py" and name in _lazy_exports(init):
                pending.append(f"{parent}.{_lazy_exports(init)[name]}")
            continue
        files.add(str(path))
        pending.extend(_imported_modules(path, module))
    return tuple(sorted(files))


def module_sources(*modules: str, package_dir: str | os.PathLike) -> list[str]:
    """Source files of ``modules`` and every anomalyflow module they import, under ``package_dir``.

    ``package_dir`` is the ``anomalyflow`` package folder of the checkout the workflow runs (its
    ``src/anomalyflow``); the paths are relative when it is. Returns an empty list when it does not exist
    (an installed library).
    """
    if not Path(package_dir).is_dir():
        return []
    # Not resolved: a relative package_dir gives paths relative to the working directory, which
    # Snakemake records as given, so a run copied or moved elsewhere keeps the same set of inputs.
    return list(_closure(tuple(modules), os.path.normpath(package_dir)))
