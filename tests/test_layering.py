"""The package's layering holds: the import-linter contracts of pyproject.toml pass, and no module reaches for a
private name (one starting with ``_``) of another module."""

import ast
import os
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("tfcl", "tfx_pipeline", "serving")


def is_private(name):
    """``_name`` but not ``__name__`` (``__future__``, ``__version__``)."""
    return name.startswith("_") and not (name.startswith("__") and name.endswith("__"))


def first_party(module):
    return module.split(".")[0] in PACKAGES


def private_imports(source):
    """Each private name ``source`` takes from another module of the project: ``from module import _name``, a
    dotted module with a private part (``import a._b``, ``from a._b import c``), and ``imported._name`` where
    ``imported`` was bound by an import (``from tfcl.data import weibo`` ... ``weibo._helper``). Other libraries'
    private names (``argparse._SubParsersAction`` in a type hint) are theirs to keep stable."""
    tree = ast.parse(source)
    found, imported = [], set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and first_party(node.module):
            if any(is_private(part) for part in node.module.split(".")):
                found.append(node.module)
            found += [f"{node.module}: {alias.name}" for alias in node.names if is_private(alias.name)]
            imported.update(alias.asname or alias.name for alias in node.names)
        elif isinstance(node, ast.Import) and all(first_party(alias.name) for alias in node.names):
            found += [alias.name for alias in node.names if any(map(is_private, alias.name.split(".")))]
            imported.update(alias.asname or alias.name.split(".")[0] for alias in node.names)
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and is_private(node.attr):
            base = node.value
            while isinstance(base, ast.Attribute):
                base = base.value
            if isinstance(base, ast.Name) and base.id in imported:
                found.append(f"{ast.unparse(node.value)}: {node.attr}")
    return found


def test_private_imports_are_found():
    source = (
        "from tfcl.b import _hidden, shown\nimport tfcl._inner\nfrom serving._e import f\n"
        "from __future__ import annotations\nimport tfcl.h\nfrom tfx_pipeline import j\nimport argparse, os\n"
        "x = tfcl.h._private + j._also + self._own + shown.__doc__ + argparse._SubParsersAction + os._exit\n"
    )
    assert private_imports(source) == ["tfcl.b: _hidden", "tfcl._inner", "serving._e", "tfcl.h: _private", "j: _also"]


def test_no_module_imports_a_private_name_of_another():
    offenders = {
        str(path.relative_to(ROOT)): imports
        for package in PACKAGES
        for path in sorted((ROOT / package).rglob("*.py"))
        if (imports := private_imports(path.read_text(encoding="utf-8")))
    }
    assert not offenders, f"imports of private names: {offenders}"


def test_import_contracts_hold():
    lint_imports = shutil.which("lint-imports") or str(Path(sys.executable).with_name("lint-imports"))
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
    result = subprocess.run([lint_imports], cwd=ROOT, capture_output=True, text=True, env=env)
    assert result.returncode == 0, result.stdout + result.stderr
