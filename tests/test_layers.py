"""The architecture, checked on the source: layers, one CLI package, no CLI syntax below it."""

from __future__ import annotations

import ast
import functools
import re
from pathlib import Path

import pytest
import typer

from churnctl.errors import Fix, InputError

PACKAGE = Path(__file__).resolve().parents[1] / "churnctl"
# The ground: flat modules every layer may use. Among them, a module imports only lower ranks.
GROUND: dict[str, int] = {
    "errors": 0,
    "faults": 0,
    "names": 0,
    "interrupts": 0,
    "version": 0,
    "defaults": 0,
    "arguments": 1,
    "atomic": 1,
    "moved": 1,
}
# The packages, and the packages each may import (besides the ground and itself).
# Lower layers never know upper ones; watch and flink, io and scoring, know nothing of each other.
ALLOWED: dict[str, set[str]] = {
    "features": set(),
    "io": {"features"},
    "scoring": {"features"},
    "samples": set(),
    "batch": {"features", "io", "scoring"},
    "watch": {"features", "io", "scoring", "batch"},
    "flink": {"features", "io", "scoring", "batch"},
    # the fused ONNX export: a state's stages and a model as one ONNX graph
    "fused": {"features", "scoring"},
    # every runtime side by side, compared (verify): above watch and flink, below the CLI
    "verify": {"features", "io", "scoring", "batch", "watch", "flink", "fused"},
    "__init__": {"features", "io", "scoring", "batch", "watch", "fused"},  # the public facade
    "cli": {"features", "io", "scoring", "batch", "watch", "flink", "samples", "verify", "fused"},
    "__main__": {"cli"},
}


@functools.cache
def modules() -> dict[str, ast.Module]:
    """Every module by dotted name below ``churnctl``: ``atomic``, ``io.csv.records`` ..."""
    found = {}
    for path in PACKAGE.rglob("*.py"):
        parts = path.relative_to(PACKAGE).with_suffix("").parts
        if parts[-1] == "__init__" and len(parts) > 1:
            parts = parts[:-1]
        found[".".join(parts)] = ast.parse(path.read_text(encoding="utf-8"))
    return found


def package(name: str) -> str:
    """``io`` for ``io.csv.records``; ``ground`` for a flat module of the ground."""
    top = name.split(".")[0]
    return "ground" if top in GROUND else top


LIBRARY = sorted(name for name in modules() if package(name) not in {"cli", "__main__"})


def imported(tree: ast.Module) -> list[tuple[str, list[str]]]:
    """(module, names) for each ``import churnctl.x`` / ``from churnctl.x import ...``."""
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("churnctl."):
            found.append((node.module.removeprefix("churnctl."), [a.name for a in node.names]))
        elif isinstance(node, ast.ImportFrom) and node.module == "churnctl":
            found += [(a.name, []) for a in node.names]
        elif isinstance(node, ast.Import):
            names = [a.name for a in node.names if a.name.startswith("churnctl.")]
            found += [(name.removeprefix("churnctl."), []) for name in names]
    return found


def test_imports_inside_functions_and_type_checking_blocks_count_too() -> None:
    """The CLI imports the library inside its commands: those imports obey the layers too."""
    tree = ast.parse(
        "if TYPE_CHECKING:\n    from churnctl.features.state import FeatureState\n"
        "def f():\n    from churnctl.scoring.scorer import Scorer\n    import churnctl.io.sinks\n"
    )
    assert imported(tree) == [
        ("features.state", ["FeatureState"]),
        ("scoring.scorer", ["Scorer"]),
        ("io.sinks", []),
    ]


def test_every_module_belongs_to_a_named_layer() -> None:
    assert {package(name) for name in modules()} <= {"ground", *ALLOWED}
    flat = sorted(name for name in modules() if "." not in name and name in GROUND)
    assert len(flat) <= 10, f"the ground grows flat again: {flat}"


@pytest.mark.parametrize("name", sorted(modules()))
def test_a_module_imports_only_lower_layers(name: str) -> None:
    own = package(name)
    for target, _ in imported(modules()[name]):
        theirs = package(target)
        if own == "ground":
            assert theirs == "ground" and GROUND[target] < GROUND[name], f"{name} imports {target}"
        else:
            assert theirs in {"ground", own, *ALLOWED[own]}, f"{name} ({own}) imports {target}"


def test_the_samples_use_the_ground_only() -> None:
    for name in [n for n in modules() if package(n) == "samples"]:
        assert {package(t) for t, _ in imported(modules()[name])} <= {"ground", "samples"}


def test_the_import_graph_has_no_circle() -> None:
    graph = {
        name: {t for t, _ in imported(tree) if t in modules() and t != name}
        for name, tree in modules().items()
    }
    done: set[str] = set()

    def visit(name: str, path: tuple[str, ...]) -> None:
        assert name not in path, f"import circle: {' -> '.join((*path, name))}"
        if name not in done:
            for target in sorted(graph[name]):
                visit(target, (*path, name))
            done.add(name)

    for name in sorted(graph):
        visit(name, ())


@pytest.mark.parametrize("name", LIBRARY)
def test_only_the_cli_prints_exits_or_imports_typer_and_rich(name: str) -> None:
    tree = modules()[name]
    imports = {
        a.name.split(".")[0] for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names
    }
    imports |= {
        (n.module or "").split(".")[0] for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)
    }
    assert not imports & {"typer", "rich", "click"}
    calls = {
        n.func.id
        for n in ast.walk(tree)
        if isinstance(n, ast.Call) and isinstance(n.func, ast.Name)
    }
    assert not calls & {"print", "exit", "quit"}
    attributes = {
        f"{n.value.id}.{n.attr}"
        for n in ast.walk(tree)
        if isinstance(n, ast.Attribute) and isinstance(n.value, ast.Name)
    }
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


COMMAND_NAMES = (
    "fit",
    "score",
    "bind",
    "inspect",
    "export-onnx",
    "generate",
    "watch",
    "watch-status",
    "flink-submit",
    "evaluate",
    "verify",
    "drift",
)
NAMES_A_COMMAND = re.compile(rf"churnctl ({'|'.join(COMMAND_NAMES)})\b")


def docstrings(tree: ast.Module) -> set[int]:
    """The ids of the docstring constants of a module, its classes and functions."""
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef):
            body = node.body
            if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant):
                found.add(id(body[0].value))
    return found


NOT_MESSAGES = {"flink.render": "the job file it writes says which command wrote it"}


@pytest.mark.parametrize("name", sorted(set(LIBRARY) - set(NOT_MESSAGES)))
def test_library_messages_name_settings_and_actions_never_a_command(name: str) -> None:
    """``refit it (fit_state)``: the CLI spells the action as its command (errors.Step)."""
    tree = modules()[name]
    skip = docstrings(tree)
    texts = [
        n.value
        for n in ast.walk(tree)
        if isinstance(n, ast.Constant) and isinstance(n.value, str) and id(n) not in skip
    ]
    assert [t for t in texts if NAMES_A_COMMAND.search(t)] == []


def test_the_command_names_are_the_cli_s() -> None:
    from churnctl.cli.app import app

    commands = typer.main.get_command(app).commands  # type: ignore[attr-defined]
    assert sorted(commands) == sorted(COMMAND_NAMES)


def test_the_formatter_owns_the_layout() -> None:
    """``ruff format`` decides every line (``./dev.sh test`` checks it); no line opts out."""
    opt_outs = ["fmt: " + word for word in ("skip", "off")]
    root = PACKAGE.parent
    sources = [
        p
        for folder in ("churnctl", "tests", "benchmarks", "scripts")
        for p in (root / folder).rglob("*.py")
    ]
    found = [
        f"{p.relative_to(root)}:{n}"
        for p in sources
        for n, line in enumerate(p.read_text(encoding="utf-8").splitlines(), 1)
        if any(o in line for o in opt_outs)
    ]
    assert found == []


MAX_MODULE_LINES = 450


def test_no_module_is_over_the_size_of_one_job() -> None:
    """A module past 450 lines is doing more than one job: split it (README, "Layout")."""
    sizes = {
        str(p.relative_to(PACKAGE)): len(p.read_text(encoding="utf-8").splitlines())
        for p in PACKAGE.rglob("*.py")
    }
    assert {name: n for name, n in sizes.items() if n > MAX_MODULE_LINES} == {}
