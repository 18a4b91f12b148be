"""Every churnctl benchmark in one run, side by side, written to docs/benchmarks.md with a chart.

    uv run python benchmarks/run.py [--smoke] [--repeat 3] [--skip watch,flink]
                                    [--out docs/benchmarks.md] [--chart docs/benchmarks.png]

Each figure times whole processes (``churnctl`` through its console entry point,
the hand-written scripts beside this file), one after the other, with the
variants of one comparison interleaved in every round, and reports medians of
``--repeat`` rounds. Wall and CPU time (user + system) come from ``os.wait4``
on each child, its own peak RSS from ``peak_of.py``. Compared with, in the same run:

* ``floor.py``: the least a script can do (pyarrow, numpy, one ONNX call);
* ``record_loop.py``: one record at a time, as the reference job's map function;
* ``sklearn_baseline.py``: pandas + a fitted scikit-learn ColumnTransformer + ORT;
* ``polars_script.py``: polars expressions + ORT, what a performance-minded engineer
  writes (issue 21): on the main file, a wide file (``--wide-rows`` rows and
  ``WIDE_EXTRA`` unused numeric columns) and a one-row file (the fixed cost).

Their scores are checked against ``churnctl score``'s (|Δ raw| ≤ 1e-6) before
anything is timed. ``bench_watch.py`` and ``bench_flink.py`` run as they are
(unless skipped) and their sections are put in the page too, their targeted
figures in the summary table. The page keeps the sections of the scripts that
did not run (``--skip``), and their targeted figures still join the summary.
``--smoke`` runs tiny sizes into a temporary folder (the test
suite runs it): the checks mean something, the figures do not. Exit 1 when a
run fails or a check does not hold; ``--check-targets`` also when a target is
missed.
"""

from __future__ import annotations

import argparse
import csv
import functools
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import bench_report  # noqa: E402

from churnctl.samples.bundled import MODEL, STATE, bundled  # noqa: E402
from churnctl.samples.generate import generate_files  # noqa: E402

TITLE = "Summary (`benchmarks/run.py`)"
OTHER_TITLES = {"watch": "`churnctl watch`", "flink": "`churnctl flink-submit` (embedded Flink)"}
CHURNCTL = ["-c", "from churnctl.__main__ import main; main()"]


@dataclass(frozen=True)
class Proc:
    """One finished child process."""

    wall: float
    cpu: float  # user + system seconds
    peak_mb: float


@dataclass
class Target:
    """A figure's target: ``<=`` or ``>=`` a bound."""

    op: str
    bound: float

    def met(self, value: float) -> bool:
        return value <= self.bound if self.op == "<=" else value >= self.bound

    def headroom(self, value: float) -> float:
        """> 1 when met: how far inside the target the value is, as a ratio."""
        if value <= 0:
            return 0.0
        return self.bound / value if self.op == "<=" else value / self.bound

    def __str__(self) -> str:
        return f"{'≤' if self.op == '<=' else '≥'} {self.bound:g}"


@dataclass
class Report:
    figures: list[bench_report.Figure] = field(default_factory=list)
    chart: list[tuple[str, float]] = field(default_factory=list)  # label, headroom
    problems: list[str] = field(default_factory=list)

    def add(
        self, name: str, measured: str, target: Target | None = None, value: float | None = None
    ) -> None:
        met = None if target is None or value is None else target.met(value)
        self.figures.append((name, measured, "" if target is None else str(target), met))
        if target is not None and value is not None:
            self.chart.append((name, target.headroom(value)))
        mark = "" if met is None else ("  [met]" if met else "  [NOT MET]")
        print(
            f"  {name}: {measured}" + (f"  (target {target})" if target else "") + mark, flush=True
        )


# --------------------------------------------------------------------------- processes


def environment() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT), env.get("PYTHONPATH")) if p)
    return env


def run_process(args: Sequence[str], *, peak: bool = True) -> Proc:
    """Run ``python ARGS`` to its end; its wall, CPU and own peak RSS; raise on failure.

    With ``peak``, the child runs under ``peak_of.py``, which reports its own VmHWM.
    """
    with tempfile.NamedTemporaryFile(prefix="peak-", suffix=".kb") as peak_file:
        wrapper = [str(HERE / "peak_of.py"), peak_file.name] if peak else []
        started = time.perf_counter()
        proc = subprocess.Popen(
            [sys.executable, *wrapper, *args],
            env=environment(),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        stderr = proc.stderr.read() if proc.stderr else b""
        _, status, usage = os.wait4(proc.pid, 0)  # the child's own CPU time
        proc.returncode = code = os.waitstatus_to_exitcode(status)
        wall = time.perf_counter() - started
        kilobytes = Path(peak_file.name).read_text(encoding="ascii").strip()
    if code != 0:
        tail = " | ".join(stderr.decode(errors="replace").strip().splitlines()[-3:])
        raise RuntimeError(f"{' '.join(map(str, args[2:5]))}... exited {code}: {tail}")
    peak_mb = int(kilobytes) / 1024 if kilobytes else float("nan")
    return Proc(wall, usage.ru_utime + usage.ru_stime, peak_mb)


def churnctl(*args: str | Path) -> list[str]:
    return [*CHURNCTL, *(str(a) for a in args)]


def script(name: str, *args: str | Path) -> list[str]:
    return [str(HERE / name), *(str(a) for a in args)]


def pair_paths() -> tuple[str, str]:
    return str(bundled(STATE)), str(bundled(MODEL))


def rounds(variants: dict[str, Callable[[], Proc]], repeat: int) -> dict[str, Proc]:
    """Each variant ``repeat`` times, interleaved; per variant, the median wall's run
    (wall, CPU and peak RSS each the median of their own)."""
    runs: dict[str, list[Proc]] = {key: [] for key in variants}
    for _ in range(repeat):
        for key, run in variants.items():
            runs[key].append(run())
    return {
        key: Proc(
            statistics.median(p.wall for p in procs),
            statistics.median(p.cpu for p in procs),
            statistics.median(p.peak_mb for p in procs),
        )
        for key, procs in runs.items()
    }


# --------------------------------------------------------------------------- inputs


@dataclass
class Inputs:
    main: Path  # --rows rows
    bad_end: Path  # the same, one bad value in its last row
    loop: Path  # --loop-rows rows
    parts: Path  # a folder of 8 part files
    big: Path  # --big-rows rows
    wide: Path  # --wide-rows rows, WIDE_EXTRA more numeric columns that nothing reads
    one_row: Path  # the main file's first row
    rows: int
    loop_rows: int
    parts_rows: int
    big_rows: int
    wide_rows: int


WIDE_EXTRA = 150  # an export table's unused columns


def make_inputs(tmp: Path, args: argparse.Namespace) -> Inputs:
    main = generate_files(tmp / "main.csv", n_rows=args.rows, seed=1)[0]
    bad_end = tmp / "bad-end.csv"
    shutil.copyfile(main, bad_end)
    spoil_last_row(bad_end)
    loop = generate_files(tmp / "loop.csv", n_rows=args.loop_rows, seed=2)[0]
    generate_files(tmp / "parts", n_rows=args.parts_rows, files=8, seed=3)
    big = generate_files(tmp / "big.csv", n_rows=args.big_rows, seed=4)[0]
    wide = widened(generate_files(tmp / "narrow.csv", n_rows=args.wide_rows, seed=5)[0])
    one_row = tmp / "one-row.csv"
    one_row.write_bytes(first_row(main))
    return Inputs(
        main,
        bad_end,
        loop,
        tmp / "parts",
        big,
        wide,
        one_row,
        args.rows,
        args.loop_rows,
        args.parts_rows,
        args.big_rows,
        args.wide_rows,
    )


def first_row(path: Path) -> bytes:
    """The header and the first row of a CSV file."""
    with path.open("rb") as handle:
        return handle.readline() + handle.readline()


def widened(path: Path) -> Path:
    """``path`` with ``WIDE_EXTRA`` more numeric columns (4 decimals), as ``wide.csv``."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.csv as pacsv

    table = pacsv.read_csv(path)
    rng = np.random.default_rng(6)
    for i in range(WIDE_EXTRA):
        values = np.round(rng.normal(1000, 300, table.num_rows), 4)
        table = table.append_column(f"Extra{i}", pa.array(values))
    wide = path.with_name("wide.csv")
    pacsv.write_csv(table, wide)
    path.unlink()
    return wide


def spoil_last_row(path: Path) -> None:
    """Give the file's last row a CreditScore that is not a number."""
    data = path.read_bytes()
    head, last = data.rstrip(b"\n").rsplit(b"\n", 1)
    header = data.split(b"\n", 1)[0].decode().split(",")
    values = last.decode().split(",")
    values[header.index("CreditScore")] = "not-a-number"
    path.write_bytes(head + b"\n" + ",".join(values).encode() + b"\n")


def raw_column(path: Path, rows: int = 1000) -> list[float]:
    with path.open(newline="") as handle:
        reader = csv.DictReader(handle)
        return [float(row["raw"]) for _, row in zip(range(rows), reader, strict=False)]


def check_baselines(tmp: Path, inputs: Inputs, report: Report) -> None:
    """Each hand-written script scores the loop file as ``churnctl score`` does."""
    state, model = pair_paths()
    run_process(churnctl("score", inputs.loop, "-o", tmp / "check-score.csv"))
    expected = raw_column(tmp / "check-score.csv")
    for name in ("floor.py", "record_loop.py", "sklearn_baseline.py", "polars_script.py"):
        out = tmp / f"check-{name}.csv"
        run_process(script(name, state, model, inputs.loop, out))
        compare_scores(f"{name} on {inputs.loop.name}", raw_column(out), expected, report)


def compare_scores(what: str, got: list[float], expected: list[float], report: Report) -> None:
    """A problem unless ``got`` holds as many raw values as ``expected``, each within 1e-6."""
    if len(got) != len(expected):
        report.problems.append(f"{what}: {len(got)} scores, churnctl score gave {len(expected)}")
        return
    worst = max((abs(a - b) for a, b in zip(got, expected, strict=True)), default=0.0)
    if worst > 1e-6:
        report.problems.append(f"{what}: scores differ from churnctl score (max Δ {worst:g})")


# --------------------------------------------------------------------------- figures


def score_figures(tmp: Path, inputs: Inputs, args: argparse.Namespace, report: Report) -> None:
    """score against the floor, the record loop and the scikit-learn script."""
    state, model = pair_paths()
    out = tmp / "out"
    out.mkdir(exist_ok=True)
    timed = rounds(
        {
            "score": lambda: run_process(churnctl("score", inputs.main, "-o", out / "s.csv")),
            "floor": lambda: run_process(
                script("floor.py", state, model, inputs.main, out / "f.csv")
            ),
            "sklearn": lambda: run_process(
                script("sklearn_baseline.py", state, model, inputs.main, out / "k.csv")
            ),
            "loop": lambda: run_process(
                script("record_loop.py", state, model, inputs.loop, out / "l.csv")
            ),
        },
        args.repeat,
    )
    s, f, k, loop = (timed[key] for key in ("score", "floor", "sklearn", "loop"))
    n = inputs.rows
    report.add(
        f"`score` {n:,} rows: wall, CPU, peak RSS",
        f"{s.wall:.2f} s, {s.cpu:.2f} s, {s.peak_mb:,.0f} MB ({n / s.wall:,.0f} rows/s)",
    )
    report.add(
        f"floor script {n:,} rows: wall, CPU, peak RSS",
        f"{f.wall:.2f} s, {f.cpu:.2f} s, {f.peak_mb:,.0f} MB",
    )
    report.add(
        "`score` / floor, wall", f"{s.wall / f.wall:.2f}", Target("<=", 1.15), s.wall / f.wall
    )
    report.add("`score` / floor, CPU", f"{s.cpu / f.cpu:.2f}", Target("<=", 1.15), s.cpu / f.cpu)
    loop_rate, score_rate = inputs.loop_rows / loop.wall, n / s.wall
    report.add(
        f"`score` rows/s / record-at-a-time loop rows/s ({loop_rate:,.0f} rows/s on "
        f"{inputs.loop_rows:,} rows)",
        f"{score_rate / loop_rate:.1f}",
        Target(">=", 25),
        score_rate / loop_rate,
    )
    report.add(
        f"pandas + scikit-learn ColumnTransformer + ORT wall ({k.wall:.2f} s) / `score`",
        f"{k.wall / s.wall:.2f}",
        Target(">=", 3),
        k.wall / s.wall,
    )


def polars_figures(tmp: Path, inputs: Inputs, args: argparse.Namespace, report: Report) -> None:
    """score against the polars script: the main file, the wide file, a one-row file."""
    state, model = pair_paths()
    out = tmp / "out"
    out.mkdir(exist_ok=True)
    cases = {"main": inputs.main, "wide": inputs.wide, "one-row": inputs.one_row}
    variants: dict[str, Callable[[], Proc]] = {}
    for case, path in cases.items():
        variants[f"score {case}"] = functools.partial(
            run_process, churnctl("score", path, "-o", out / f"s-{case}.csv")
        )
        variants[f"polars {case}"] = functools.partial(
            run_process, script("polars_script.py", state, model, path, out / f"p-{case}.csv")
        )
    check_same_scores(out / "s-wide.csv", inputs.wide, out / "p-wide.csv", report)
    timed = rounds(variants, args.repeat)
    sizes = {
        "main": f"{inputs.rows:,} rows",
        "wide": f"{inputs.wide_rows:,} rows + {WIDE_EXTRA} unused columns",
    }
    for case, size in sizes.items():
        s, p = timed[f"score {case}"], timed[f"polars {case}"]
        report.add(
            f"polars script, {size}: wall, CPU, peak RSS",
            f"{p.wall:.2f} s, {p.cpu:.2f} s, {p.peak_mb:,.0f} MB",
        )
        report.add(
            f"`score` / polars script, {size}, wall",
            f"{s.wall / p.wall:.2f} ({s.wall:.2f} s)",
            Target("<=", 1.25),
            s.wall / p.wall,
        )
        report.add(
            f"`score` / polars script, {size}, CPU",
            f"{s.cpu / p.cpu:.2f} ({s.cpu:.2f} s)",
            Target("<=", 1.25),
            s.cpu / p.cpu,
        )
    s, p = timed["score one-row"], timed["polars one-row"]
    report.add(
        "`score` / polars script, a one-row file (the fixed cost), wall",
        f"{s.wall / p.wall:.2f} ({s.wall:.2f} s against {p.wall:.2f} s)",
        Target("<=", 1.2),
        s.wall / p.wall,
    )


def check_same_scores(ours: Path, source: Path, theirs: Path, report: Report) -> None:
    """Both outputs of ``source`` (run once here) hold the same raw, to 1e-6."""
    state, model = pair_paths()
    run_process(churnctl("score", source, "-o", ours))
    run_process(script("polars_script.py", state, model, source, theirs))
    compare_scores(
        f"polars_script.py on {source.name}", raw_column(theirs), raw_column(ours), report
    )


def output_figures(tmp: Path, inputs: Inputs, args: argparse.Namespace, report: Report) -> None:
    """JSONL against CSV output; one bad row at the end against the clean file."""
    out = tmp / "out"
    out.mkdir(exist_ok=True)
    timed = rounds(
        {
            "csv": lambda: run_process(churnctl("score", inputs.main, "-o", out / "c.csv")),
            "jsonl": lambda: run_process(churnctl("score", inputs.main, "-o", out / "j.jsonl")),
            "bad": lambda: run_process(churnctl("score", inputs.bad_end, "-o", out / "b.csv")),
        },
        args.repeat,
    )
    c, j, b = timed["csv"], timed["jsonl"], timed["bad"]
    report.add(
        "JSONL output rows/s / CSV output rows/s (whole process)",
        f"{c.wall / j.wall:.2f} ({j.wall:.2f} s against {c.wall:.2f} s)",
        Target(">=", 0.6),
        c.wall / j.wall,
    )
    report.add(
        f"one bad row at the end of {inputs.rows:,} rows / the clean file, wall",
        f"{b.wall / c.wall:.2f} ({b.wall:.2f} s against {c.wall:.2f} s)",
        Target("<=", 1.15),
        b.wall / c.wall,
    )


def worker_figures(tmp: Path, inputs: Inputs, args: argparse.Namespace, report: Report) -> None:
    """``score --workers 2`` against ``--workers 1`` on 8 part files."""

    def workers(n: int) -> Proc:
        target = tmp / f"workers-{n}"
        shutil.rmtree(target, ignore_errors=True)
        return run_process(
            churnctl("score", inputs.parts, "--out-dir", target, "--workers", str(n))
        )

    timed = rounds({"1": lambda: workers(1), "2": lambda: workers(2)}, args.repeat)
    one, two = timed["1"], timed["2"]
    report.add(
        f"`score --workers 2` speed-up, 8 files, {inputs.parts_rows:,} rows",
        f"{one.wall / two.wall:.2f} ({two.wall:.2f} s against {one.wall:.2f} s)",
        Target(">=", 1.7),
        one.wall / two.wall,
    )


def memory_figures(tmp: Path, inputs: Inputs, args: argparse.Namespace, report: Report) -> None:
    """Peak RSS of ``score`` and ``fit`` on the big file against the main one."""
    for command in ("score", "fit"):
        peaks = {}
        for label, path in (("small", inputs.main), ("big", inputs.big)):
            out = tmp / f"{command}-{label}.{'csv' if command == 'score' else 'json'}"
            peaks[label] = run_process(churnctl(command, path, "-o", out)).peak_mb
        report.add(
            f"`{command}` peak RSS, {inputs.big_rows:,} rows (against {inputs.rows:,})",
            f"{peaks['big']:,.0f} MB (against {peaks['small']:,.0f} MB, "
            f"{peaks['big'] / peaks['small']:.2f} times)",
            Target("<=", 300),
            peaks["big"],
        )


def startup_figures(tmp: Path, inputs: Inputs, args: argparse.Namespace, report: Report) -> None:
    """``churnctl --help`` against ``python -c pass`` and a bare two-command Typer app's
    ``--help`` (``bench_startup.TYPER_ONLY``): medians of ``--help-runs``, interleaved."""
    from bench_startup import TYPER_ONLY

    cases = {
        "churnctl": churnctl("--help"),
        "bare": ["-c", "pass"],
        "typer": ["-c", TYPER_ONLY, "--help"],
    }
    walls: dict[str, list[float]] = {key: [] for key in cases}
    for _ in range(args.help_runs):
        for key, command in cases.items():
            walls[key].append(run_process(command, peak=False).wall)
    wall, bare, typer = (statistics.median(walls[key]) for key in ("churnctl", "bare", "typer"))
    report.add(
        "`churnctl --help` wall",
        f"{wall:.3f} s (`python -c pass`: {bare:.3f} s; a "
        f"bare two-command Typer app's `--help`: {typer:.3f} s)",
        Target("<=", 0.25),
        wall,
    )


MEASURES = {
    "score": score_figures,
    "polars": polars_figures,
    "output": output_figures,
    "workers": worker_figures,
    "memory": memory_figures,
    "startup": startup_figures,
}


# --------------------------------------------------------------------------- other scripts


def other_script(name: str, args: argparse.Namespace, tmp: Path, report: Report) -> str | None:
    """Run ``bench_NAME.py --markdown``; its section, its targeted figures added to ours."""
    section = tmp / f"{name}.md"
    command = [str(HERE / f"bench_{name}.py"), "--markdown", str(section)]
    print(f"bench_{name}.py ...", flush=True)
    result = subprocess.run(
        [sys.executable, *command], env=environment(), check=False, stdin=subprocess.DEVNULL
    )
    if not section.exists():
        report.problems.append(f"bench_{name}.py exited {result.returncode} without a section")
        return None
    if result.returncode != 0:
        report.problems.append(f"bench_{name}.py exited {result.returncode}: see its section")
    text = section.read_text(encoding="utf-8")
    add_targeted(name, text, report)
    return text


def add_targeted(name: str, section: str, report: Report) -> None:
    """A section's figures that have a target, into the summary table and the chart."""
    for figure, measured, target, met in targeted_rows(section):
        report.figures.append((f"{name}: {figure}", measured, target, met))
        value = first_number(measured)
        if value is not None and (bound := target_of(target)) is not None:
            report.chart.append((f"{name}: {figure}", bound.headroom(value)))


def kept_section(page: Path, name: str) -> str | None:
    """The page's section of a script that did not run this time, if it has one."""
    if not page.exists():
        return None
    _, sections = split_sections(page.read_text(encoding="utf-8"))
    return dict(sections).get(OTHER_TITLES[name])


def targeted_rows(markdown: str) -> list[bench_report.Figure]:
    rows = []
    for line in markdown.splitlines():
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        if len(cells) == 4 and cells[2] and cells[2] != "target" and not cells[2].startswith("-"):
            rows.append((cells[0], cells[1], cells[2], cells[3] == "yes"))
    return rows


def first_number(text: str) -> float | None:
    found = re.search(r"-?\d[\d,]*(?:\.\d+)?", text)
    return float(found.group().replace(",", "")) if found else None


def target_of(text: str) -> Target | None:
    found = re.match(r"([≤≥])\s*([\d.]+)", text)
    if not found:
        return None
    return Target("<=" if found.group(1) == "≤" else ">=", float(found.group(2)))


# --------------------------------------------------------------------------- the page


def draw_chart(report: Report, path: Path) -> None:
    """Bars of each target's headroom (> 1: met), the line at 1."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    labels = [label for label, _ in report.chart]
    values = [value for _, value in report.chart]
    fig, ax = plt.subplots(figsize=(9, 0.45 * len(labels) + 1.5))
    colors = ["#3a7d44" if v >= 1 else "#c0392b" for v in values]
    ax.barh(range(len(labels)), values, color=colors)
    ax.axvline(1.0, color="black", linewidth=1)
    ax.set_yticks(range(len(labels)), [shorten(label) for label in labels], fontsize=8)
    ax.invert_yaxis()
    ax.set_xscale("log")
    ax.set_xlabel("headroom against the target (> 1: met; log scale)")
    ax.set_title("churnctl benchmarks: measured against target, same run")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def shorten(label: str, width: int = 60) -> str:
    label = re.sub(r"\s*\(.*?\)", "", label.replace("`", ""))
    return label if len(label) <= width else label[: width - 1] + "…"


def write_page(path: Path, ours: str, others: dict[str, str]) -> None:
    """Replace our section and the re-run ones; keep the sections of scripts that did not run."""
    old = path.read_text(encoding="utf-8") if path.exists() else "# Benchmarks\n"
    preamble, sections = split_sections(old)
    fresh = {section_title(text): text.strip() for text in [ours, *others.values()]}
    kept = [text for title, text in sections if title not in fresh]
    body = [preamble.strip(), ours.strip(), *(t.strip() for t in others.values()), *kept]
    path.write_text("\n\n".join(body) + "\n", encoding="utf-8")


def split_sections(text: str) -> tuple[str, list[tuple[str, str]]]:
    parts = re.split(r"(?m)^(?=## )", text)
    return parts[0], [(section_title(part), part.strip()) for part in parts[1:]]


def section_title(text: str) -> str:
    first = text.strip().splitlines()[0]
    return first.removeprefix("## ").removesuffix(" benchmark").strip()


def our_section(report: Report, args: argparse.Namespace, seconds: float, chart: str) -> str:
    notes = [
        f"![measured against target]({chart})",
        "",
        "Whole processes, medians of the rounds; the variants of each comparison ran "
        "interleaved in the same run. Headroom in the chart is target / measured for a "
        "≤ target and measured / target for a ≥ target.",
    ]
    text = bench_report.markdown(
        TITLE,
        "python " + " ".join(sys.argv),
        seconds,
        ("pyarrow", "numpy", "onnxruntime", "pandas", "scikit-learn"),
        report.figures,
        notes,
        report.problems,
    )
    return text.replace("## Summary (`benchmarks/run.py`) benchmark", f"## {TITLE}")


# --------------------------------------------------------------------------- main


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--loop-rows", type=int, default=100_000)
    parser.add_argument("--parts-rows", type=int, default=2_000_000, help="8 files in all")
    parser.add_argument("--big-rows", type=int, default=10_000_000)
    parser.add_argument("--wide-rows", type=int, default=200_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--help-runs", type=int, default=10)
    parser.add_argument("--only", help=f"comma-separated, of {','.join(MEASURES)}")
    parser.add_argument("--skip", default="", help="comma-separated, of watch,flink")
    parser.add_argument("--smoke", action="store_true", help="tiny sizes, into a temp folder")
    parser.add_argument("--out", type=Path, help="the page (default docs/benchmarks.md)")
    parser.add_argument("--chart", type=Path, help="the PNG (default beside the page)")
    parser.add_argument("--check-targets", action="store_true")
    parser.add_argument("--tmp", type=Path, help="parent of the temporary folder")
    args = parser.parse_args()
    if args.smoke:
        args.rows, args.loop_rows, args.parts_rows, args.big_rows = 2_000, 300, 800, 4_000
        args.wide_rows = 500
        args.repeat, args.help_runs, args.skip = 1, 2, "watch,flink"
    return args


def main() -> int:
    args = parse_args()
    started, report = time.perf_counter(), Report()
    measures = [m for m in (args.only or ",".join(MEASURES)).split(",") if m]
    others: dict[str, str] = {}
    with tempfile.TemporaryDirectory(prefix="bench-run-", dir=args.tmp) as name:
        tmp = Path(name)
        page = args.out or (tmp / "benchmarks.md" if args.smoke else ROOT / "docs/benchmarks.md")
        chart = args.chart or page.with_suffix(".png")
        page.parent.mkdir(parents=True, exist_ok=True)
        print(
            f"inputs: {args.rows:,} rows; loop {args.loop_rows:,}; 8 parts of "
            f"{args.parts_rows:,} in all; big {args.big_rows:,}",
            flush=True,
        )
        inputs = make_inputs(tmp, args)
        check_baselines(tmp, inputs, report)
        for measure in measures:
            print(f"{measure} ...", flush=True)
            try:
                MEASURES[measure](tmp, inputs, args, report)
            except RuntimeError as exc:
                report.problems.append(f"{measure}: {exc}")
        for other in OTHER_TITLES:
            if other in args.skip.split(","):  # its section stays; its targets still count
                if (kept := kept_section(page, other)) is not None:
                    add_targeted(other, kept, report)
            elif (text := other_script(other, args, tmp, report)) is not None:
                others[other] = text
        if report.chart:
            draw_chart(report, chart)
        seconds = time.perf_counter() - started
        write_page(page, our_section(report, args, seconds, chart.name), others)
        print(f"wrote {page} and {chart} in {seconds:.0f} s")
    for problem in report.problems:
        print(f"PROBLEM {problem}", file=sys.stderr)
    missed = [figure for figure, _, _, met in report.figures if met is False]
    return 1 if report.problems or (args.check_targets and missed) else 0


if __name__ == "__main__":
    sys.exit(main())
