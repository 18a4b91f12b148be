"""``watch`` and ``watch-status``: stream a landing folder; show a watcher's manifest.

The watcher and the scorer are imported inside the commands, not to slow ``--help``.
"""

from __future__ import annotations

import collections
import contextlib
import json
import logging
import sys
import time
from collections.abc import Iterator
from dataclasses import asdict
from pathlib import Path
from typing import IO, TYPE_CHECKING, Annotated, Any

import typer
from rich.table import Table

from churnctl.cli.app import command, flag_message
from churnctl.cli.console import stderr, stdout
from churnctl.cli.documents import drift_record
from churnctl.cli.drift import drift_warning
from churnctl.cli.options import (
    KEEP_DEFAULT,
    AllowMismatch,
    DecimalOpt,
    Delimiter,
    Encoding,
    JsonOpt,
    KeepOpt,
    LogitsOpt,
    MaxRejects,
    ModelOpt,
    NoDriftOpt,
    SettleMs,
    StateOpt,
    ThresholdOpt,
    parse_max_rejects,
    path_value,
    read_options,
    scorer_options,
)
from churnctl.cli.report import add_text_row, pair_label, print_demo_note, warned_scorer
from churnctl.errors import ChurnctlError, FilesFailedError, UsageError
from churnctl.io.formats import DEFAULT_PATTERNS

if TYPE_CHECKING:
    from rich.live import Live

    from churnctl.watch.manifest import ManifestSummary
    from churnctl.watch.watcher import Watcher, WatchEvent, WatchReport, WatchSettings

LATENCIES_KEPT = 1_000  # the live p99 is over the last this many files
RATE_WINDOW = 10.0  # seconds: the live rows/s is over this recent window


def _opt(metavar: str, help: str, *names: str) -> Any:
    return typer.Option(*names, metavar=metavar, help=help)


OutDir = Annotated[
    Path | None,
    typer.Option(
        "--out",
        metavar="DIR",
        parser=path_value,
        help="Folder for outputs, rejects and the manifest (.churnctl/).",
    ),
]
InDir = Annotated[
    Path | None,
    typer.Argument(metavar="IN_DIR", parser=path_value, help="Landing folder to watch."),
]
OutFormat = Annotated[str, _opt("csv|jsonl|parquet", "Output format.")]
Patterns = Annotated[list[str], _opt("GLOB", "Input names to take; repeat for more.")]
DoneMarker = Annotated[str | None, _opt("SUFFIX", "Take X only once X+SUFFIX exists.")]
Rescan = Annotated[float, _opt("SECONDS", "List the folder this often (events are hints).")]
Poll = Annotated[float | None, _opt("SECONDS", "No kernel events (NFS, SMB): list this often.")]
After = Annotated[str, _opt("keep|archive|delete", "What becomes of a scored input.")]
ArchiveDir = Annotated[Path | None, _opt("DIR", "Archive folder (default IN_DIR/.processed).")]
Retain = Annotated[float | None, _opt("DAYS", "Forget finished files after DAYS.")]
MaxAttempts = Annotated[int, _opt("N", "Quarantine a file after N failed attempts.")]
Reprocess = Annotated[bool, typer.Option(help="Score again files edited after scoring.")]
Once = Annotated[bool, typer.Option(help="Score what is there, then exit (4 if any failed).")]
LogJson = Annotated[str | None, _opt("FILE", "Append one JSON line per file; - for stderr.")]
Status = Annotated[bool, typer.Option(help="Show the manifest of --out and exit.")]


@command
def watch(
    in_dir: InDir = None,
    out: OutDir = None,
    state: StateOpt = None,
    model: ModelOpt = None,
    keep: KeepOpt = KEEP_DEFAULT,
    threshold: ThresholdOpt = 0.5,
    format: OutFormat = "csv",
    max_rejects: MaxRejects = "5%",
    allow_state_mismatch: AllowMismatch = False,
    logits: LogitsOpt = False,
    delimiter: Delimiter = ",",
    decimal: DecimalOpt = ".",
    encoding: Encoding = "utf-8",
    pattern: Patterns = DEFAULT_PATTERNS,
    settle: SettleMs = 1000,
    done_marker: DoneMarker = None,
    rescan: Rescan = 30.0,
    poll: Poll = None,
    after: After = "keep",
    archive_dir: ArchiveDir = None,
    retain: Retain = None,
    max_attempts: MaxAttempts = 3,
    reprocess_changed: Reprocess = False,
    once: Once = False,
    log_json: LogJson = None,
    status: Status = False,
    no_drift: NoDriftOpt = False,
) -> None:
    """Score each complete file landing in IN_DIR exactly once, within milliseconds."""
    if status:
        return watch_status(_required(out, "--out DIR"))
    from churnctl.io.listing import NameRules
    from churnctl.watch.watcher import WatchSettings

    flags = scorer_options(keep, threshold, allow_state_mismatch, logits, decimal)
    scorer = warned_scorer(state, model, flags)
    settings = WatchSettings(
        in_dir=_required(in_dir, "IN_DIR"),
        out_dir=_required(out, "--out DIR"),
        scorer=scorer,
        format=format,
        max_rejects=parse_max_rejects(max_rejects),
        read_options=read_options(delimiter, encoding),
        rules=NameRules(tuple(pattern), done_marker),
        settle=settle / 1000,
        rescan=rescan,
        poll=poll,
        after=after,
        archive_dir=archive_dir,
        retain_days=retain,
        max_attempts=max_attempts,
        reprocess_changed=reprocess_changed,
        once=once,
        drift=not no_drift,
    )
    report = _run(settings, log_json)
    _print_report(report, settings)
    if settings.once and report.failed:  # a watcher stopped by a signal exits 0: see .failed/
        raise FilesFailedError(
            f"{report.failed} file(s) failed: see {settings.in_dir / '.failed'} and "
            f"churnctl watch-status {settings.out_dir}"
        )
    return None


def _required(value: Path | None, what: str) -> Path:
    if value is None:
        raise UsageError(f"watch needs {what}")
    return value


def _run(settings: WatchSettings, log_json: str | None) -> WatchReport:
    from churnctl.watch.watcher import Watcher

    # watchdog logs a harmless race on stop ("queue_events() called when the thread is
    # inactive"); events are only hints here, listings the truth: keep its log quiet
    logging.getLogger("watchdog").addHandler(logging.NullHandler())
    with _json_log(log_json) as log, _Status(settings) as status:
        watcher = Watcher(settings, on_event=lambda event: status.show(event, log))
        status.watcher = watcher
        with _stopped_by_signals(watcher):
            return watcher.run()


@contextlib.contextmanager
def _stopped_by_signals(watcher: Watcher) -> Iterator[None]:
    """SIGINT and SIGTERM finish the current file and stop; a second one stops at once."""
    import churnctl.interrupts as interrupts

    with interrupts.first_signal_calls(watcher.stop):  # the second unwinds: temporaries removed
        yield


@contextlib.contextmanager
def _json_log(target: str | None) -> Iterator[IO[str] | None]:
    if target is None:
        yield None
    elif target == "-":
        yield sys.stderr
    else:
        with Path(target).open("a", encoding="utf-8") as handle:
            yield handle


def _json_line(event: WatchEvent) -> str:
    record: dict[str, Any] = {
        "event": event.kind,
        "input": event.input,
        "output": event.output,
        "rejects": event.rejects,
    }
    if event.counts is not None:
        record |= {f"rows_{k}": v for k, v in asdict(event.counts).items()}
    message = _event_message(event) or None
    record |= {"latency_ms": event.latency_ms, "message": message, "at": event.at}
    if event.drift is not None:  # a scored file compared with the training profile
        record["drift"] = drift_record(event.drift)
    return json.dumps(record, ensure_ascii=False)


class RecentRate:
    """Rows per second over the last ``window`` seconds: idle time ages out of it.

    Each file's rows count at the moment it was scored; a run younger than the window
    is averaged over its age.
    """

    def __init__(self, window: float = RATE_WINDOW, clock: Any = time.monotonic) -> None:
        self.window, self.clock = window, clock
        self.started = clock()
        self._samples: collections.deque[tuple[float, int]] = collections.deque()
        self._rows = 0  # the rows of the samples kept

    def add(self, rows: int) -> None:
        self._samples.append((self.clock(), rows))
        self._rows += rows

    def rate(self) -> float:
        now = self.clock()
        while self._samples and self._samples[0][0] <= now - self.window:
            self._rows -= self._samples.popleft()[1]
        span = min(self.window, now - self.started)
        return self._rows / span if span > 0 else 0.0


class _Status:
    """Per-file lines on stderr, or a live panel when stderr is a terminal."""

    def __init__(self, settings: WatchSettings) -> None:
        self.settings = settings
        self.watcher: Watcher | None = None
        self.rate = RecentRate()
        self.latencies: collections.deque[float] = collections.deque(maxlen=LATENCIES_KEPT)
        self.live: Live | None = None
        self.drift = "-"  # the last drift warning, shown in the panel

    def __enter__(self) -> _Status:
        if stderr.is_terminal:
            from rich.live import Live

            self.live = Live(
                get_renderable=self._panel, console=stderr, refresh_per_second=4, transient=False
            )
            self.live.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        if self.live is not None:
            self.live.__exit__(None, None, None)

    def show(self, event: WatchEvent, log: IO[str] | None) -> None:
        if log is not None and event.kind != "started":  # the JSON log: one line per file
            log.write(_json_line(event) + "\n")
            log.flush()
        if event.latency_ms is not None:
            self.latencies.append(event.latency_ms)
        if event.counts is not None:
            self.rate.add(event.counts.read)
        if self.live is None or event.kind != "scored":
            stderr.print(_event_line(event), markup=False, soft_wrap=True)
        warning = drift_warning(event.input, event.drift, self.settings.scorer.state.source)
        if warning is not None:
            self.drift = warning
            if self.live is None:
                stderr.print(f"Warning: {warning}", markup=False, soft_wrap=True)
        if event.kind == "started":  # the watcher runs: say now what it scores with
            scorer = self.settings.scorer
            print_demo_note(scorer.model_name, scorer.state.source)

    def _panel(self) -> Table:
        from churnctl.watch.watcher import WatchReport

        report = self.watcher.report if self.watcher else WatchReport()
        pending = len(self.watcher.pending) if self.watcher else 0
        ordered = sorted(self.latencies)
        p99 = ordered[min(len(ordered) - 1, int(0.99 * len(ordered)))] if ordered else None
        last = self.latencies[-1] if self.latencies else None
        table = Table.grid(padding=(0, 2))
        for label, value in (
            ("files", f"{report.scored:,} done, {pending:,} pending, {report.failed:,} failed"),
            (
                "rows",
                f"{report.rows.read:,} read, {report.rows.rejected:,} rejected, "
                f"{self.rate.rate():,.0f} rows/s (last {RATE_WINDOW:g} s)",
            ),
            ("latency", f"last {_ms(last)}, p99 {_ms(p99)}"),
            ("drift", self.drift),
        ):
            table.add_row(label, value)
        return table


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value:,.0f} ms"


def _event_message(event: WatchEvent) -> str:
    """The event's message and its remedy, spelled as this command's option."""
    return flag_message(ChurnctlError(event.message, fix=event.fix), "watch")


def _event_line(event: WatchEvent) -> str:
    if event.kind == "started":  # the folder is locked and watched: only now say so
        return f"watching {event.input} → {event.output}"
    if event.kind == "scored" and event.counts is not None:
        return (
            f"scored {event.input}: {event.counts.read:,} rows ({event.counts.rejected:,} "
            f"rejected) in {_ms(event.latency_ms)} → {event.output}"
        )
    message = _event_message(event)
    if event.kind == "failed":
        moved = f" (moved to {event.output})" if event.output else ""
        return f"FAILED {event.input}: {message}{moved}"
    return f"{event.kind} {event.input}: {message or event.output or ''}".rstrip(": ")


def _print_report(report: WatchReport, settings: WatchSettings) -> None:
    left = f"; {len(report.left)} incomplete file(s) left: {', '.join(report.left)}"
    stderr.print(
        f"watch stopped: {report.scored:,} file(s) scored, {report.failed:,} failed; "
        f"{report.rows.read:,} rows read: {report.rows.scored:,} scored, "
        f"{report.rows.rejected:,} rejected"
        + (left if report.left else "")
        + f"; {pair_label(settings.scorer)}",
        markup=False,
        soft_wrap=True,
    )


@command
def watch_status(
    out: Annotated[
        Path,
        typer.Argument(
            metavar="OUT_DIR", parser=path_value, help="The output folder of a watcher."
        ),
    ],
    as_json: JsonOpt = False,
) -> None:
    """Show a watcher's manifest: files by state, the last ones, failures and reasons."""
    from churnctl.watch.manifest import read_manifest

    manifest = read_manifest(out)
    try:
        summary = manifest.summary()
    finally:
        manifest.close()
    if as_json:
        from churnctl.cli.documents import print_document, status_document

        return print_document(status_document(str(out), summary))
    for table in _status_tables(summary):
        stdout.print(table)


def _status_tables(summary: ManifestSummary) -> list[Table]:
    counts = Table(title="files by state")
    for state in summary.by_state:
        counts.add_column(state, justify="right")
    counts.add_row(*(f"{n:,}" for n in summary.by_state.values()))
    last = Table("input", "rows", "rejected", "latency", "output", title="last scored")
    for entry in summary.last:
        read, rejected = f"{entry.rows_read or 0:,}", f"{entry.rows_rejected or 0:,}"
        add_text_row(last, entry.name, read, rejected, _ms(entry.latency_ms), entry.output or "")
    failures = Table("input", "attempts", "reason", title="failed")
    for entry in summary.failures:
        add_text_row(failures, entry.name, str(entry.attempts), entry.error or "")
    rows = summary.rows
    totals = Table.grid(padding=(0, 2))
    totals.add_row(
        "rows", f"{rows.read:,} read: {rows.scored:,} scored, {rows.rejected:,} rejected"
    )
    totals.add_row("manifest", f"{summary.size_bytes:,} bytes")
    return [counts, totals, last, failures]
