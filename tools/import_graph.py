"""The package's import graph, read from the source files' syntax trees (nothing is imported).

Used by `tests/test_import_structure.py` and runnable by hand: `python tools/import_graph.py` prints any import
cycle and any module of the core package that imports `lmcodec.training` or `lmcodec.hub_cards` at import time.

Modules are named by import name (`lmcodec.cli`, `lmcodec.training.report`, ...), mapped from the folders in
pyproject.toml's `[tool.setuptools] package-dir`. Every `import` / `from ... import` counts, at module level or inside
a function (a deferred import is still a dependency, so it counts for cycles); what runs "at import time" is the
module-level imports alone. `from lmcodec import X` counts as importing the module that defines X in
`lmcodec/__init__.py`'s lazy-name table.
"""

from __future__ import annotations

import ast
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CORE_PACKAGES = ("lmcodec", "lmcodec.processing", "lmcodec.runtime")  # must not load training or hub_cards
OPTIONAL_PACKAGES = ("lmcodec.training", "lmcodec.hub_cards")


def package_folders() -> dict[str, Path]:
    settings = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    return {name: ROOT / folder for name, folder in settings["package-dir"].items()}


def module_files() -> dict[str, Path]:
    """Import name → source file, for every .py file of the package's folders."""
    modules = {}
    for package, folder in sorted(package_folders().items(), key=lambda item: len(item[0])):
        for file in folder.rglob("*.py"):
            parts = list(file.relative_to(folder).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts = parts[:-1]
            name = ".".join([package, *parts])
            if any(name == other or name.startswith(other + ".") for other in package_folders() if other != package
                   and other.startswith(package + ".") and file.is_relative_to(package_folders()[other])):
                continue
            modules.setdefault(name, file)
    return modules


def _lazy_names(init_file: Path) -> dict[str, str]:
    """`lmcodec/__init__.py`'s `_LAZY_NAMES`: attribute → relative module that defines it."""
    for node in ast.walk(ast.parse(init_file.read_text())):
        if isinstance(node, ast.Assign) and any(getattr(t, "id", "") == "_LAZY_NAMES" for t in node.targets):
            return ast.literal_eval(node.value)
    return {}


def _resolve(current: str, is_package: bool, level: int, module: str | None) -> str:
    base = current.split(".") if is_package else current.split(".")[:-1]
    base = base[: len(base) - (level - 1)] if level > 1 else base
    return ".".join([*base, module] if module else base)


def _module_level_nodes(tree: ast.Module):
    """The statements that run when the module is imported (not those inside functions or classes' methods)."""
    pending = list(tree.body)
    while pending:
        node = pending.pop()
        yield node
        if not isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)):
            pending.extend(child for child in ast.iter_child_nodes(node) if isinstance(child, ast.stmt))


def import_edges(modules: dict[str, Path], at_import_time: bool = False) -> dict[str, set[str]]:
    """Module → the package modules it imports (with `at_import_time`: only those its module-level code imports)."""
    lazy = {name: _resolve("lmcodec", True, 1, target.lstrip(".")) for name, target in
            _lazy_names(modules["lmcodec"]).items()}
    edges: dict[str, set[str]] = {}
    for name, file in modules.items():
        targets = set()
        is_package = file.name == "__init__.py"
        tree = ast.parse(file.read_text())
        for node in _module_level_nodes(tree) if at_import_time else ast.walk(tree):
            if isinstance(node, ast.Import):
                targets.update(alias.name for alias in node.names)
            elif isinstance(node, ast.ImportFrom):
                base = _resolve(name, is_package, node.level, node.module) if node.level else node.module or ""
                for alias in node.names:
                    candidate = f"{base}.{alias.name}"
                    if candidate in modules:
                        targets.add(candidate)
                    elif base == "lmcodec" and alias.name in lazy:
                        targets.add(lazy[alias.name])
                    else:
                        targets.add(base)
        edges[name] = {_owner(target, modules) for target in targets if _owner(target, modules)} - {name}
    return edges


def _owner(target: str, modules: dict[str, Path]) -> str | None:
    """The package module `target` names (itself, or the closest enclosing module), or None outside the package."""
    while target:
        if target in modules:
            return target
        target = target.rpartition(".")[0]
    return None


def cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """The import cycles (strongly connected components of more than one module), each sorted."""
    index, low, stack, on_stack, found, counter = {}, {}, [], set(), [], [0]

    def visit(node: str) -> None:
        index[node] = low[node] = counter[0]
        counter[0] += 1
        stack.append(node)
        on_stack.add(node)
        for successor in edges.get(node, ()):
            if successor not in index:
                visit(successor)
                low[node] = min(low[node], low[successor])
            elif successor in on_stack:
                low[node] = min(low[node], index[successor])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    sys.setrecursionlimit(10_000)
    for node in sorted(edges):
        if node not in index:
            visit(node)
    return found


def core_modules_reaching_optional(edges: dict[str, set[str]]) -> list[tuple[str, str]]:
    """(core module, optional module) pairs where importing a core module loads training/ or hub_cards/, directly
    or through other modules (`edges` should be the import-time edges)."""
    pairs = []
    for module in sorted(edges):
        if module.startswith(OPTIONAL_PACKAGES):
            continue
        seen, pending = set(), [module]
        while pending:
            for target in edges.get(pending.pop(), ()):
                if target not in seen:
                    seen.add(target)
                    pending.append(target)
        pairs.extend((module, target) for target in sorted(seen) if target.startswith(OPTIONAL_PACKAGES))
    return pairs


def main() -> int:
    modules = module_files()
    edges = import_edges(modules)
    problems = 0
    for component in cycles(edges):
        print("import cycle: " + " ↔ ".join(component))
        problems += 1
    for module, target in core_modules_reaching_optional(import_edges(modules, at_import_time=True)):
        print(f"importing core module {module} loads {target}")
        problems += 1
    print(f"{len(edges)} modules, {sum(map(len, edges.values()))} imports, {problems} problems")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
