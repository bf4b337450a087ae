"""The arrows point one way (docs/architecture.md): memory/ knows neither the engine nor LSP,
the engine knows nothing of LSP. Checked on the source, module by module."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[2] / "server" / "deskmate"
FORBIDDEN = {
    "memory": ("deskmate.engine", "deskmate.lsp", "deskmate.cli", "openai", "pygls", "lsprotocol"),
    "engine": ("deskmate.lsp", "deskmate.cli", "pygls", "lsprotocol"),
}


def imported_modules(path: Path) -> set[str]:
    package = "deskmate." + ".".join(path.relative_to(PACKAGE).parent.parts)
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:  # relative: resolve against the module's package
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                names.add(".".join(base + ([node.module] if node.module else [])))
            elif node.module:
                names.add(node.module)
    return names


@pytest.mark.parametrize("layer", list(FORBIDDEN))
def test_imports_point_one_way(layer):
    for path in sorted((PACKAGE / layer).rglob("*.py")):
        for name in imported_modules(path):
            assert not name.startswith(FORBIDDEN[layer]), f"{path.relative_to(PACKAGE)} imports {name}"
