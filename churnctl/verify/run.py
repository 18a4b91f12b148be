"""``verify_runtimes``: the sample through every runtime, in a temporary folder, compared."""

from __future__ import annotations

import tempfile
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

from churnctl.arguments import PATH, check_path, check_type
from churnctl.errors import ChurnctlError, UsageError
from churnctl.io.sources import STDIN, ReadOptions, check_input, open_source
from churnctl.scoring.scorer import Scorer, scorer_from
from churnctl.verify.compare import TOLERANCE, VerifyReport, compare
from churnctl.verify.runtimes import (
    RAN,
    RUNTIMES,
    SKIPPED,
    Outcome,
    Run,
    run_runtime,
)
from churnctl.verify.sample import ROW, Sample, write_sample


def verify_runtimes(
    input: str | Path,
    scorer: Scorer,
    *,
    rows: int | None = None,
    tolerance: float = TOLERANCE,
    read_options: ReadOptions | None = None,
    skip: Sequence[str] = (),
) -> VerifyReport:
    """Score the first ``rows`` rows of ``input`` (every row: None) through every runtime
    and compare each with ``score_file``; ``skip`` names runtimes not to run.

    The report says, per runtime, the rows scored and rejected, the max |Δ raw| and the
    decisions flipped against ``score_file``, and whether it agrees (``passed``). Only
    ``scorer``'s state, model and options count: every runtime keeps the sample's row
    numbers instead of ``scorer.keep``. Nothing is left behind.
    """
    _check_arguments(input, scorer, rows, tolerance, skip)
    options = read_options or ReadOptions()
    check_type("verify_runtimes", "read_options", options, ReadOptions, "a ReadOptions")
    numbered = scorer_from(scorer.state, scorer.model, replace(scorer.options, keep=(ROW,)))
    if str(input) != STDIN:  # DATA's header, named as DATA, before the sample is written
        check_input(input)
        needed = [c for c in numbered.required_columns if c != ROW]
        open_source(input, needed, options).close()
    with tempfile.TemporaryDirectory(prefix="churnctl-verify-") as temporary:
        folder = Path(temporary)
        (folder / "sample").mkdir()
        sample = write_sample(input, folder / "sample", rows, options)
        outcomes = _run_every_runtime(numbered, sample, folder, options, skip)
    reference = outcomes[0]
    if reference.status != RAN:  # the input itself is refused (a missing column ...)
        raise reference.error or ChurnctlError(f"{input}: {reference.reason}")
    results = [compare(reference, o, tolerance) for o in outcomes]
    return VerifyReport(str(input), sample.rows, tolerance, tuple(results))


def runtime_names() -> list[str]:
    """The runtimes ``verify_runtimes`` runs, in order (the first is the reference)."""
    return [r.name for r in RUNTIMES]


def _check_arguments(
    input: object, scorer: object, rows: object, tolerance: object, skip: Sequence[str]
) -> None:
    check_path("verify_runtimes", "input", input, PATH)
    check_type("verify_runtimes", "scorer", scorer, Scorer, "a Scorer")
    if rows is not None and (not isinstance(rows, int) or isinstance(rows, bool) or rows < 1):
        raise UsageError(f"rows must be a whole number >= 1, got {rows!r}")
    number = isinstance(tolerance, int | float) and not isinstance(tolerance, bool)
    if not number or not 0 <= tolerance < float("inf"):
        raise UsageError(f"tolerance must be a number >= 0, got {tolerance!r}")
    unknown = [name for name in skip if name not in runtime_names()[1:]]
    if unknown:
        raise UsageError(
            f"cannot skip {unknown[0]!r}: the runtimes that may be skipped are "
            + ", ".join(runtime_names()[1:])
        )


def _run_every_runtime(
    scorer: Scorer, sample: Sample, folder: Path, options: ReadOptions, skip: Sequence[str]
) -> list[Outcome]:
    """Each runtime's outcome on the sample, each in a folder of its own under ``folder``."""
    outcomes = []
    for runtime in RUNTIMES:
        work = folder / f"runtime-{len(outcomes)}"
        work.mkdir()
        if runtime.name in skip:
            outcomes.append(Outcome(runtime.name, SKIPPED, "skipped as asked"))
            continue
        outcomes.append(run_runtime(runtime, Run(scorer, sample, work, options)))
    return outcomes
