"""Every scoring option of ``score`` is an option of every runtime: watch and flink-submit.

The options are found, not listed: the keyword parameters of ``Scorer`` (less ``threads``,
which each runtime sets for itself) and the fields of ``ReadOptions`` (less the block
size), each spelled as ``score`` spells it. A new scoring option that one runtime lacks
fails here, before a model that needs it cannot run there.
"""

from __future__ import annotations

import inspect
from dataclasses import fields

import pytest
import typer

from churnctl.cli.app import app
from churnctl.io.sources import ReadOptions
from churnctl.scoring.scorer import Scorer

RUNTIME_OWN = {"threads", "block_size"}  # set by each runtime, not by its user


def scoring_settings() -> list[str]:
    keywords = [
        p.name for p in inspect.signature(Scorer.__init__).parameters.values()
        if p.kind is p.KEYWORD_ONLY
    ]  # fmt: skip
    return [n for n in [*keywords, *(f.name for f in fields(ReadOptions))] if n not in RUNTIME_OWN]


def options_of(command: str) -> set[str]:
    params = typer.main.get_command(app).commands[command].params  # type: ignore[attr-defined]
    return {name for param in params for name in param.opts}


def test_the_settings_are_found() -> None:
    assert {"keep", "threshold", "logits", "decimal", "delimiter", "encoding"} <= set(
        scoring_settings())  # fmt: skip


@pytest.mark.parametrize("runtime", ["score", "watch", "flink-submit"])
@pytest.mark.parametrize("setting", scoring_settings())
def test_every_runtime_takes_every_scoring_option(runtime: str, setting: str) -> None:
    flag = "--" + setting.replace("_", "-")
    assert flag in options_of("score")
    assert flag in options_of(runtime), f"{runtime} lacks {flag}"
