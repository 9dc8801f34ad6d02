"""The package's import structure, checked over the source files' syntax trees (tools/import_graph.py)."""

import importlib.util
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def load_import_graph():
    spec = importlib.util.spec_from_file_location("import_graph", ROOT / "tools" / "import_graph.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_no_import_cycles():
    graph = load_import_graph()
    edges = graph.import_edges(graph.module_files())
    assert "lmcodec.cli" in edges and "lmcodec.training.report" in edges  # the graph covers every folder
    assert graph.cycles(edges) == []


def test_core_package_loads_nothing_from_training_or_hub_cards():
    graph = load_import_graph()
    assert graph.core_modules_reaching_optional(graph.import_edges(graph.module_files(), at_import_time=True)) == []


def test_the_checker_finds_a_planted_cycle_and_a_planted_core_import():
    graph = load_import_graph()
    planted = {"lmcodec.a": {"lmcodec.b"}, "lmcodec.b": {"lmcodec.c"}, "lmcodec.c": {"lmcodec.a"}, "lmcodec.d": set()}
    assert graph.cycles(planted) == [["lmcodec.a", "lmcodec.b", "lmcodec.c"]]
    reaching = {"lmcodec.cli": {"lmcodec.x"}, "lmcodec.x": {"lmcodec.training.report"}}
    assert graph.core_modules_reaching_optional(reaching) == [("lmcodec.cli", "lmcodec.training.report"),
                                                               ("lmcodec.x", "lmcodec.training.report")]


def test_importing_the_package_and_its_command_line_loads_neither_torch_nor_transformers():
    code = ("import sys, lmcodec, lmcodec.cli, lmcodec.bitstream, lmcodec.compression, lmcodec.datagram, "
            "lmcodec.processing.files; "
            "from lmcodec.cli import build_parser; build_parser(); "
            "loaded = [m for m in ('torch', 'transformers', 'datasets', 'lmcodec.training', 'lmcodec.hub_cards') "
            "if m in sys.modules]; print(loaded); sys.exit(1 if loaded else 0)")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
