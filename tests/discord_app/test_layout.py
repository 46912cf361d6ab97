"""The Discord layer's modules import one another in one direction only, at module level, and
the study service never imports discord."""

from __future__ import annotations

import ast
import graphlib
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = ROOT / "bot" / "discord_app"


def _imports(tree: ast.AST) -> list[ast.Import | ast.ImportFrom]:
    return [n for n in ast.walk(tree) if isinstance(n, ast.Import | ast.ImportFrom)]


def _discord_app_deps(tree: ast.AST) -> set[str]:
    deps: set[str] = set()
    for node in _imports(tree):
        if isinstance(node, ast.ImportFrom) and node.module:
            names = (
                [f"bot.discord_app.{a.name}" for a in node.names]
                if node.module == "bot.discord_app"
                else [node.module]
            )
        else:
            names = [a.name for a in node.names]
        deps |= {n.split(".")[2] for n in names if n.startswith("bot.discord_app.")}
    return deps


def test_no_import_circle_in_discord_app() -> None:
    graph = {
        path.stem: _discord_app_deps(ast.parse(path.read_text())) for path in PACKAGE.glob("*.py")
    }
    order = list(graphlib.TopologicalSorter(graph).static_order())  # raises CycleError
    assert set(order) >= {"app", "common", "views", "modals", "participant", "moderator"}
    assert graph["common"] == set()
    assert "app" not in set().union(*(deps for name, deps in graph.items() if name != "app"))


def test_no_function_level_imports_in_discord_app() -> None:
    for path in PACKAGE.glob("*.py"):
        tree = ast.parse(path.read_text())
        for function in ast.walk(tree):
            if isinstance(function, ast.FunctionDef | ast.AsyncFunctionDef):
                inner = _imports(function)
                assert not inner, f"{path.name}:{function.name} imports inside a function"


def test_the_service_never_imports_discord() -> None:
    code = "import sys, bot.service, bot.service.outcomes; print('discord' in sys.modules)"
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT
    )
    assert out.stdout.strip() == "False"
