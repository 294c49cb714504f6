"""The package import graph, read from the source with `ast` (imports inside functions and
under TYPE_CHECKING count too): the floors of ARCHITECTURE.md hold and no package cycle exists.

    corral (the command)
      -> controller, model_worker, openai_api, webui (services: never each other)
      -> store, servekit (no service, never corral; servekit not even store)
      -> protocol, conv_templates (no other Corral package)
"""

from __future__ import annotations

import ast
from collections import defaultdict
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = (
    "protocol",
    "conv_templates",
    "servekit",
    "store",
    "controller",
    "model_worker",
    "openai_api",
    "webui",
    "corral",
)
SERVICES = {"controller", "model_worker", "openai_api", "webui"}

Edges = dict[str, dict[str, list[str]]]  # package -> imported package -> where ("file:line")


def _imported(module: str, node: ast.Import | ast.ImportFrom) -> list[str]:
    """Absolute names of what `node` (in `module`, dotted) imports."""
    if isinstance(node, ast.Import):
        return [alias.name for alias in node.names]
    if node.level == 0:
        return [node.module or ""]
    base = module.split(".")[: -node.level]  # a module's own name counts as one level
    return [".".join([*base, node.module] if node.module else base)]


def import_graph(root: Path = ROOT) -> Edges:
    edges: Edges = defaultdict(lambda: defaultdict(list))
    for package in PACKAGES:
        for path in sorted((root / package).rglob("*.py")):
            relative = path.relative_to(root).with_suffix("")
            parts = list(relative.parts)
            module = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
            if parts[-1] == "__init__":
                module += ".__init__"  # so that level 1 resolves to the package itself
            for node in ast.walk(ast.parse(path.read_text(), str(path))):
                if not isinstance(node, ast.Import | ast.ImportFrom):
                    continue
                for name in _imported(module, node):
                    target = name.split(".")[0]
                    if target in PACKAGES and target != package:
                        edges[package][target].append(f"{relative}.py:{node.lineno}")
    return edges


@pytest.fixture(scope="module")
def graph() -> Edges:
    return import_graph()


def _where(graph: Edges, source: str, targets: set[str]) -> list[str]:
    return [
        f"{source} -> {t} ({', '.join(graph[source][t])})" for t in graph[source] if t in targets
    ]


def test_the_scan_sees_imports(graph: Edges) -> None:
    assert "store" in graph["controller"] and "servekit" in graph["store"]
    assert "conv_templates" in graph["model_worker"]


def test_no_cycle_between_packages(graph: Edges) -> None:
    def reaches(start: str, goal: str, seen: set[str]) -> bool:
        for nxt in graph[start]:
            if nxt == goal or (nxt not in seen and reaches(nxt, goal, seen | {nxt})):
                return True
        return False

    cyclic = [p for p in PACKAGES if reaches(p, p, {p})]
    assert not cyclic, f"packages on an import cycle: {cyclic}"


@pytest.mark.parametrize("package", ["protocol", "conv_templates"])
def test_the_vocabulary_imports_no_other_corral_package(graph: Edges, package: str) -> None:
    assert not _where(graph, package, set(PACKAGES))


@pytest.mark.parametrize("service", sorted(SERVICES))
def test_services_never_import_each_other(graph: Edges, service: str) -> None:
    assert not _where(graph, service, SERVICES - {service})


def test_the_base_imports_no_service_no_store_and_not_corral(graph: Edges) -> None:
    assert not _where(graph, "servekit", SERVICES | {"store", "corral", "conv_templates"})


def test_the_store_imports_only_the_base_and_protocol(graph: Edges) -> None:
    assert not _where(graph, "store", set(PACKAGES) - {"servekit", "protocol"})


def test_nothing_below_the_command_imports_corral(graph: Edges) -> None:
    assert not [w for p in PACKAGES if p != "corral" for w in _where(graph, p, {"corral"})]


def test_a_function_local_import_counts(tmp_path: Path) -> None:
    (tmp_path / "servekit").mkdir()
    (tmp_path / "servekit" / "x.py").write_text("def f():\n    from corral import up\n")
    (tmp_path / "store").mkdir()
    (tmp_path / "store" / "__init__.py").write_text("from .base import y\nfrom ..webui import z\n")
    for package in PACKAGES:
        (tmp_path / package).mkdir(exist_ok=True)
    fake = import_graph(tmp_path)
    assert fake["servekit"]["corral"] == ["servekit/x.py:2"]
    assert list(fake["store"]) == ["webui"]
