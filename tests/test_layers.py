"""The import graph of the source packages: no circle of files, and no import that runs back up
from a lower layer to a higher one. Every import counts, also one inside a function or under
TYPE_CHECKING, since each is a dependency a reader has to follow.

The layers, bottom to top (docs/ARCHITECTURE.md):
contract → bot.core, workers, analysis → bot.service, bot.dispatch, bot.sweeper, bot.export →
bot.discord_app → bot.__main__; devstack (the dev stack) may use any of them; nothing but tests
imports tests.
"""

from __future__ import annotations

import ast
import graphlib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SOURCE = ("contract", "bot", "workers", "analysis", "devstack", "scripts", "benchmarks")

# module prefix -> prefixes it must never import (directly).
FORBIDDEN: dict[str, tuple[str, ...]] = {
    "contract": ("bot", "workers", "analysis", "devstack", "scripts", "benchmarks", "tests"),
    "workers": ("bot", "analysis", "devstack", "scripts", "benchmarks", "tests"),
    "analysis": ("bot", "workers", "devstack", "redis", "rq", "discord", "tests"),
    "bot.core": ("bot.service", "bot.discord_app", "bot.dispatch", "bot.sweeper", "discord"),
    "bot.service": ("bot.discord_app", "discord"),
    "bot.dispatch": ("bot.service", "bot.discord_app", "discord"),
    "bot.sweeper": ("bot.service", "bot.discord_app", "discord"),
    "bot.export": ("bot.service", "bot.discord_app", "discord"),
    "bot.discord_app": ("bot.__main__",),
    "bot": ("workers", "devstack", "scripts", "benchmarks", "tests"),
    "devstack": ("scripts", "benchmarks", "tests"),
    "scripts": ("tests",),
    "benchmarks": ("tests",),
}


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def source_files() -> list[Path]:
    return sorted(p for pkg in SOURCE for p in (ROOT / pkg).rglob("*.py"))


def imported(path: Path) -> set[str]:
    """Every module the file imports (absolute names; relative imports resolved)."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    package = (
        module_name(path).rsplit(".", 1)[0] if path.name != "__init__.py" else module_name(path)
    )
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                base = ".".join(
                    [*package.split(".")[: len(package.split(".")) - node.level + 1], base]
                ).strip(".")
            names.add(base)
            # `from pkg import module` imports the module too.
            names |= {f"{base}.{alias.name}" for alias in node.names}
    return names


def graph() -> dict[str, set[str]]:
    files = {module_name(p): p for p in source_files()}
    known = set(files)
    out: dict[str, set[str]] = {}
    for name, path in files.items():
        deps = set()
        for target in imported(path):
            # The deepest known module the import names (a package's __init__ counts as itself).
            while target and target not in known:
                target = target.rpartition(".")[0]
            if target and target != name and not name.startswith(target + "."):
                deps.add(target)
        out[name] = deps
    return out


def under(module: str, prefix: str) -> bool:
    return module == prefix or module.startswith(prefix + ".")


def test_no_circle_of_files() -> None:
    try:
        list(graphlib.TopologicalSorter(graph()).static_order())
    except graphlib.CycleError as exc:
        pytest.fail(f"import circle: {' -> '.join(exc.args[1])}")


@pytest.mark.parametrize("layer", sorted(FORBIDDEN))
def test_no_import_runs_up_a_layer(layer: str) -> None:
    bad = []
    for path in source_files():
        name = module_name(path)
        if not under(name, layer):
            continue
        for target in sorted(imported(path)):
            for forbidden in FORBIDDEN[layer]:
                if under(target, forbidden) and not under(name, forbidden):
                    bad.append(f"{name} imports {target}")
    assert not bad, "\n".join(bad)


def test_nothing_outside_tests_patches_sys_path() -> None:
    offenders = [
        str(p.relative_to(ROOT)) for p in source_files() if "sys.path.insert" in p.read_text()
    ]
    assert not offenders, offenders
