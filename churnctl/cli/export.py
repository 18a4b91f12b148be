"""The export command: ``export-onnx --fused`` (a state and a model as one ONNX graph).

Library modules are imported inside the command (see ``cli.score``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from churnctl.cli.app import command
from churnctl.cli.console import stderr
from churnctl.cli.options import LogitsOpt, ModelOpt, StateOpt, output_file
from churnctl.cli.report import print_demo_note
from churnctl.errors import UsageError
from churnctl.samples.bundled import MODEL, STATE, bundled

FusedOpt = Annotated[
    bool,
    typer.Option(
        "--fused",
        help="Export the state's feature extraction and the model as one graph (the only "
        "form for now: the flag keeps room for others).",
    ),
]


@command
def export_onnx(
    output: Annotated[Path, output_file("ONNX file to write (not the input model).")],
    fused: FusedOpt = False,
    state: StateOpt = None,
    model: ModelOpt = None,
    logits: LogitsOpt = False,
) -> None:
    """Write STATE + MODEL as one ONNX graph: raw columns in, raw and valid out."""
    from churnctl.fused.export import export_fused

    if not fused:
        raise UsageError(
            "export-onnx writes the fused form only: add --fused (the state's feature "
            "extraction and the model as one graph)"
        )
    model, state = model or bundled(MODEL), state or bundled(STATE)
    written = export_fused(state, model, output, logits=logits)
    stderr.print(
        f"fused graph → {written} (inputs: raw columns; outputs: raw, valid)", markup=False
    )
    print_demo_note(model, state)
