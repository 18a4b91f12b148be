"""Every scoring option of ``score`` is an option of every runtime: watch and flink-submit.

The options are found, not listed: the keyword parameters of ``Scorer`` (less ``threads``,
which each runtime sets for itself) and the fields of ``ReadOptions`` (less the block
size), each spelled as ``score`` spells it. A new scoring option that one runtime lacks
fails here, before a model that needs it cannot run there.
"""

from __future__ import annotations

import inspect
from dataclasses import asdict, fields
from pathlib import Path

import pytest
import typer

from churnctl.cli.app import app
from churnctl.errors import UsageError
from churnctl.flink.job import FlinkJobSpec, build_scorer
from churnctl.io.sources import ReadOptions
from churnctl.samples.bundled import MODEL, STATE, bundled
from churnctl.scoring.scorer import Scorer, ScorerOptions, scorer_from

RUNTIME_OWN = {"threads", "block_size"}  # set by each runtime, not by its user


def scoring_settings() -> list[str]:
    keywords = [
        p.name
        for p in inspect.signature(Scorer.__init__).parameters.values()
        if p.kind is p.KEYWORD_ONLY
    ]
    return [n for n in [*keywords, *(f.name for f in fields(ReadOptions))] if n not in RUNTIME_OWN]


def options_of(command: str) -> set[str]:
    params = typer.main.get_command(app).commands[command].params  # type: ignore[attr-defined]
    return {name for param in params for name in param.opts}


def test_the_settings_are_found() -> None:
    assert {"keep", "threshold", "logits", "decimal", "delimiter", "encoding"} <= set(
        scoring_settings()
    )


@pytest.mark.parametrize("runtime", ["score", "watch", "flink-submit"])
@pytest.mark.parametrize("setting", scoring_settings())
def test_every_runtime_takes_every_scoring_option(runtime: str, setting: str) -> None:
    flag = "--" + setting.replace("_", "-")
    assert flag in options_of("score")
    assert flag in options_of(runtime), f"{runtime} lacks {flag}"


def test_the_options_group_is_every_scoring_keyword_of_the_scorer() -> None:
    """``ScorerOptions`` is the one group: every keyword a user sets, no more, no less."""
    keywords = [
        p.name
        for p in inspect.signature(Scorer.__init__).parameters.values()
        if p.kind is p.KEYWORD_ONLY and p.name not in RUNTIME_OWN
    ]
    assert sorted(ScorerOptions.names()) == sorted(keywords)


def test_the_flink_job_spec_carries_every_option_and_its_scorer_uses_them(
    tmp_path: Path,
) -> None:
    """A spec with non-default options gives a job scorer with exactly those options."""
    assert set(ScorerOptions.names()) <= {f.name for f in fields(FlinkJobSpec)}
    options = ScorerOptions(
        keep=("CustomerId", "Surname"),
        threshold=0.25,
        allow_state_mismatch=True,
        logits=True,
        decimal=",",
    )
    spec = FlinkJobSpec(
        input=str(tmp_path),
        out_dir=str(tmp_path / "out"),
        state=str(bundled(STATE)),
        model=str(bundled(MODEL)),
        **asdict(options),
    )
    scorer = build_scorer(spec)
    assert scorer.options == options and scorer.threads == 1


def test_scorer_from_builds_the_scorer_its_options_describe() -> None:
    options = ScorerOptions(keep=(), threshold=0.7, logits=True)
    scorer = scorer_from(bundled(STATE), bundled(MODEL), options)
    assert scorer.options == options
    with pytest.raises(UsageError, match="options"):
        scorer_from(bundled(STATE), bundled(MODEL), {"threshold": 0.7})  # type: ignore[arg-type]
