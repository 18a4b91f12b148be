"""The architecture, checked on the source: layers, one CLI package, no CLI syntax below it."""

from __future__ import annotations

import ast
import functools
from pathlib import Path

import pytest

from churnctl.errors import Fix, InputError

PACKAGE = Path(__file__).resolve().parents[1] / "churnctl"
# Each module may import only modules of a lower layer: lower layers never know upper ones.
LAYERS: dict[str, int] = {
    "errors": 0, "arguments": 1, "columns": 0, "records": 0, "atomic": 1, "bundled": 1, "locate": 1,
    "frame": 1, "inputs": 2, "stages": 2, "pipeline": 3, "state": 4, "model": 2,
    "binding": 5, "extraction": 5, "sources": 1, "sinks": 2, "rejects": 3,
    "scorer": 6, "fitting": 6, "file_scoring": 7, "input_set": 2, "parallel_scoring": 8,
    "inspection": 6, "generate": 2, "paths": 1, "faults": 0, "moments": 0, "read_ahead": 0,
    "manifest": 1, "arrivals": 1, "disposal": 2, "watcher": 8, "names": 0, "held": 0,
    "locks": 0, "watch_settings": 7,
    "flink_scoring": 8, "flink_job": 9, "flink_render": 10, "flink_progress": 10,
    "flink_submit": 11, "flink_outputs": 9, "flink_inputs": 7, "flink_resume": 10,
    "flink_events": 0, "flink_launch": 0, "flink_folders": 1,
    "flink_process": 1, "flink_rest": 1,
    "defaults": 0, "version": 0, "cli": 12, "__init__": 8, "interrupts": 0, "__main__": 13,
}  # fmt: skip


@functools.cache
def modules() -> dict[str, ast.Module]:
    """Every module by name: ``state``, and ``cli.commands`` for the CLI package's modules."""
    found = {path.stem: path for path in PACKAGE.glob("*.py")}
    found |= {f"cli.{path.stem}": path for path in (PACKAGE / "cli").glob("*.py")}
    return {name: ast.parse(path.read_text(encoding="utf-8")) for name, path in found.items()}


def layer(name: str) -> int:
    return LAYERS[name.split(".")[0]]


LIBRARY = sorted(name for name in LAYERS if name != "cli")


def imported(tree: ast.Module) -> list[tuple[str, list[str]]]:
    """(module, names) for each ``import churnctl.x`` / ``from churnctl.x import ...``."""
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("churnctl."):
            found.append((node.module.removeprefix("churnctl."), [a.name for a in node.names]))
        elif isinstance(node, ast.Import):
            names = [a.name for a in node.names if a.name.startswith("churnctl.")]
            found += [(name.removeprefix("churnctl."), []) for name in names]
    return found


def test_imports_inside_functions_and_type_checking_blocks_count_too() -> None:
    """The CLI imports the library inside its commands: those imports obey the layers too."""
    tree = ast.parse(
        "if TYPE_CHECKING:\n    from churnctl.state import FeatureState\n"
        "def f():\n    from churnctl.scorer import Scorer\n    import churnctl.model\n"
    )
    assert imported(tree) == [("state", ["FeatureState"]), ("scorer", ["Scorer"]), ("model", [])]


def test_every_module_has_a_layer() -> None:
    assert sorted({name.split(".")[0] for name in modules()}) == sorted(LAYERS)


@pytest.mark.parametrize("name", sorted(modules()))
def test_a_module_imports_only_lower_layers(name: str) -> None:
    own_package = name.split(".")[0] if "." in name else None
    imports = [m for m, _ in imported(modules()[name]) if m.split(".")[0] != own_package]
    upward = [m for m in imports if layer(m) >= layer(name)]
    assert upward == [], f"{name} (layer {layer(name)}) imports {upward}"


@pytest.mark.parametrize("name", LIBRARY)
def test_only_the_cli_prints_exits_or_imports_typer_and_rich(name: str) -> None:
    tree = modules()[name]
    imports = {a.name.split(".")[0] for n in ast.walk(tree) if isinstance(n, ast.Import)
               for a in n.names}  # fmt: skip
    imports |= {(n.module or "").split(".")[0] for n in ast.walk(tree)
                if isinstance(n, ast.ImportFrom)}  # fmt: skip
    assert not imports & {"typer", "rich", "click"}
    calls = {n.func.id for n in ast.walk(tree)
             if isinstance(n, ast.Call) and isinstance(n.func, ast.Name)}  # fmt: skip
    assert not calls & {"print", "exit", "quit"}
    attributes = {f"{n.value.id}.{n.attr}" for n in ast.walk(tree)
                  if isinstance(n, ast.Attribute) and isinstance(n.value, ast.Name)}  # fmt: skip
    assert "sys.exit" not in attributes


@pytest.mark.parametrize("name", sorted(modules()))
def test_no_private_name_is_imported_from_another_module(name: str) -> None:
    private = [(m, n) for m, names in imported(modules()[name]) for n in names if n.startswith("_")]
    assert private == []


@pytest.mark.parametrize("name", LIBRARY)
def test_library_errors_name_settings_not_command_line_flags(name: str) -> None:
    """Flags such as --encoding belong to the CLI; the library carries a structured Fix."""
    for node in ast.walk(modules()[name]):
        if isinstance(node, ast.Raise):
            for part in ast.walk(node):
                if isinstance(part, ast.Constant) and isinstance(part.value, str):
                    assert " --" not in f" {part.value}", (name, part.value)


def test_a_fix_reads_as_a_setting_in_the_library() -> None:
    fix = Fix("encoding", "latin-1", "if the file uses another encoding")
    error = InputError("in.csv: content is not valid utf-8 text", fix=fix)
    assert str(error) == (
        "in.csv: content is not valid utf-8 text; "
        "set encoding='latin-1' if the file uses another encoding"
    )
    assert str(InputError("x", fix=Fix("allow_state_mismatch", True))) == (
        "x; set allow_state_mismatch=True"
    )
