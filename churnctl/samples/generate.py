"""Synthetic bank-churn records shaped like the public ``Churn_Modelling.csv``.

Every value is a pure function of ``(seed, RowNumber)``: rows are drawn in fixed
blocks of ``_BLOCK`` rows, each from its own seeded generator, so a table, a
chunked file and a set of part files hold the same rows for the same seed.

Calibration (public data set, 10,000 rows): Geography France 50.1%, Germany
25.1%, Spain 24.8%; Male 54.6%; CreditScore mean 650.5, sd 96.7 in [350, 850];
Age 18..92, mean 38.9, median 37; Balance 36.2% zero (Germany never);
NumOfProducts 50.8/45.9/2.7/0.6%; HasCrCard 70.5%; IsActiveMember 51.5%;
EstimatedSalary uniform on [11.58, 199992.48]; Exited 20.4%. The churn
coefficients come from a logistic fit on that data set. No rows or surnames of
it are used: surnames are made from the syllables below.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from churnctl.atomic import atomic_path
from churnctl.defaults import MAX_FILES
from churnctl.errors import OutputError, UsageError

COLUMNS: tuple[str, ...] = (
    "RowNumber",
    "CustomerId",
    "Surname",
    "CreditScore",
    "Geography",
    "Gender",
    "Age",
    "Tenure",
    "Balance",
    "NumOfProducts",
    "HasCrCard",
    "IsActiveMember",
    "EstimatedSalary",
    "Exited",
)

_STRINGS = {"Surname", "Geography", "Gender"}
_FLOATS = {"Balance", "EstimatedSalary"}
SCHEMA = pa.schema(
    [
        (name, pa.string() if name in _STRINGS else pa.float64() if name in _FLOATS else pa.int64())
        for name in COLUMNS
    ]
)

_BLOCK = 16_384  # rows per independently seeded draw block
_ID_BASE = 15_565_701  # CustomerId range of the public data set ...
_ID_SPAN = 249_990  # ... 15,565,701..15,815,690; later blocks of this size extend it upward

_GEOGRAPHIES = pa.array(["France", "Germany", "Spain"], pa.string())
_GEO_P = (0.501, 0.251, 0.248)
_GENDERS = pa.array(["Female", "Male"], pa.string())
_TENURE_P = (0.041, 0.103, 0.105, 0.101, 0.099, 0.101, 0.097, 0.103, 0.1025, 0.0985, 0.049)
_PRODUCTS_P = (0.508, 0.459, 0.027, 0.006)
# P(Balance == 0 | NumOfProducts) outside Germany; Germany never has a zero balance.
_ZERO_BALANCE_P = np.array([0.0, 0.243, 0.732, 0.58, 0.36])
_SALARY_RANGE = (11.58, 199_992.48)

# Logit of churn: intercept, age (per decade from 45), age^2, age^3, inactive,
# Germany, female, two products, three or four products, nonzero balance, credit
# score (per 100 from 650), tenure (per 5 years from 5).
_EXIT_COEF = (-1.60, 1.46, -0.20, -0.21, 1.02, 0.95, 0.54, -1.40, 2.87, 0.30, -0.06, -0.09)

_STARTS = (
    "Al",
    "Bar",
    "Bel",
    "Bran",
    "Cal",
    "Cor",
    "Dal",
    "Den",
    "Fen",
    "Gar",
    "Hal",
    "Hol",
    "Kir",
    "Lan",
    "Mar",
    "Mor",
    "Nor",
    "Pel",
    "Quin",
    "Ros",
    "Sal",
    "Tor",
    "Val",
    "Wes",
)
_MIDDLES = ("", "a", "e", "i", "o", "an", "er", "ol")
_ENDS = (
    "by",
    "dan",
    "ford",
    "ley",
    "man",
    "ner",
    "son",
    "ton",
    "well",
    "wick",
    "ini",
    "etti",
    "ova",
    "enko",
    "ez",
    "ard",
)
_SURNAMES = pa.array(sorted({s + m + e for s in _STARTS for m in _MIDDLES for e in _ENDS}))


def _customer_ids(rows: np.ndarray, seed: int) -> np.ndarray:
    """Unique CustomerIds for 1-based row numbers: a seeded affine bijection per id block."""
    state = np.random.SeedSequence([seed, 0xC1D]).generate_state(2, np.uint64)
    stride = _ID_SPAN // 3 + int(state[0] % (_ID_SPAN // 3))
    while math.gcd(stride, _ID_SPAN) != 1:
        stride += 1
    index = np.asarray(rows, dtype=np.int64) - 1
    block, pos = np.divmod(index, _ID_SPAN)
    offset = (int(state[1] % _ID_SPAN) + block * 7_919) % _ID_SPAN
    return _ID_BASE + block * _ID_SPAN + (pos * stride + offset) % _ID_SPAN


def _exited(cols: dict[str, np.ndarray], germany: np.ndarray, u: np.ndarray) -> np.ndarray:
    """Draw Exited from the logistic churn model given the other features."""
    age = (cols["Age"] - 45) / 10
    products = cols["NumOfProducts"]
    features = (
        age,
        age**2,
        age**3,
        1 - cols["IsActiveMember"],
        germany,
        cols["Gender"] == 0,
        products == 2,
        products >= 3,
        cols["Balance"] > 0,
        (cols["CreditScore"] - 650) / 100,
        (cols["Tenure"] - 5) / 5,
    )
    logit = np.full(len(u), _EXIT_COEF[0])
    for coef, feature in zip(_EXIT_COEF[1:], features, strict=True):
        logit += coef * feature
    return (u < 1 / (1 + np.exp(-logit))).astype(np.int64)


def _draw_block(seed: int, block: int) -> dict[str, np.ndarray]:
    """Draw the feature columns of one block (categories as integer codes)."""
    rng = np.random.default_rng(np.random.SeedSequence([seed, block]))
    n = _BLOCK
    geo = rng.choice(3, size=n, p=_GEO_P)
    cols = {
        "Geography": geo,
        "Gender": (rng.random(n) < 0.5457).astype(np.int64),
        "Age": np.clip(np.rint(10 + rng.lognormal(math.log(27.3), 0.355, n)), 18, 92),
        "Tenure": rng.choice(11, size=n, p=_TENURE_P),
        "CreditScore": np.clip(np.rint(rng.normal(651.0, 98.5, n)), 350, 850),
        "NumOfProducts": rng.choice(4, size=n, p=_PRODUCTS_P) + 1,
    }
    zero = (geo != 1) & (rng.random(n) < _ZERO_BALANCE_P[cols["NumOfProducts"]])
    amount = np.round(np.maximum(rng.normal(119_800.0, 30_100.0, n), 1_000.0), 2)
    cols["Balance"] = np.where(zero, 0.0, amount)
    cols["HasCrCard"] = (rng.random(n) < 0.7055).astype(np.int64)
    cols["IsActiveMember"] = (rng.random(n) < 0.5151).astype(np.int64)
    cols["EstimatedSalary"] = np.round(rng.uniform(*_SALARY_RANGE, n), 2)
    cols["Surname"] = rng.integers(0, len(_SURNAMES), n)
    cols = {k: v if k in _FLOATS else v.astype(np.int64) for k, v in cols.items()}
    cols["Exited"] = _exited(cols, geo == 1, rng.random(n))
    return cols


def _block_table(seed: int, block: int, lo: int, hi: int) -> pa.Table:
    """Rows ``lo:hi`` (0-based, within the block) of block ``block`` as a table."""
    cols = {k: v[lo:hi] for k, v in _draw_block(seed, block).items()}
    rows = np.arange(block * _BLOCK + lo + 1, block * _BLOCK + hi + 1, dtype=np.int64)
    cols["RowNumber"] = rows
    cols["CustomerId"] = _customer_ids(rows, seed)
    lookups = {"Surname": _SURNAMES, "Geography": _GEOGRAPHIES, "Gender": _GENDERS}
    arrays = [
        lookups[name].take(pa.array(cols[name])) if name in lookups else pa.array(cols[name])
        for name in COLUMNS
    ]
    return pa.Table.from_arrays(arrays, schema=SCHEMA)


def _require_at_least(**checks: tuple[int, int]) -> None:
    """Raise ``UsageError`` for the first ``name=(value, minimum)`` below its minimum."""
    for name, (value, minimum) in checks.items():
        if value < minimum:
            raise UsageError(f"{name} must be >= {minimum}, got {value}")


def generate_table(n_rows: int, *, seed: int = 0, start_row: int = 1) -> pa.Table:
    """Return rows ``start_row .. start_row + n_rows - 1`` of the synthetic data set for ``seed``.

    The result depends only on ``seed`` and the row numbers, so consecutive calls
    with advancing ``start_row`` concatenate to the same table as one call.
    """
    _require_at_least(n_rows=(n_rows, 0), start_row=(start_row, 1), seed=(seed, 0))
    first, stop = start_row - 1, start_row - 1 + n_rows
    parts = [
        _block_table(seed, b, max(first - b * _BLOCK, 0), min(stop - b * _BLOCK, _BLOCK))
        for b in range(first // _BLOCK, -(-stop // _BLOCK))
    ]
    if not parts:
        return SCHEMA.empty_table()
    return pa.concat_tables(parts).combine_chunks()


def _split(n_rows: int, files: int) -> list[int]:
    """Split ``n_rows`` into ``files`` counts differing by at most one."""
    size, extra = divmod(n_rows, files)
    return [size + (i < extra) for i in range(files)]


_FORMATS = {".parquet": "parquet", ".csv.gz": "csv.gz", ".csv": "csv"}
# names that read as a file, refused for the directory that receives part files
_FILE_SUFFIXES = (*_FORMATS, ".gz", ".jsonl", ".json", ".tsv", ".txt")


def _format_of(path: Path) -> str:
    """``parquet``, ``csv.gz`` or ``csv`` from the file name; any other name is refused."""
    name = path.name.lower()
    for suffix, fmt in _FORMATS.items():
        if name.endswith(suffix):
            return fmt
    raise UsageError(
        f"{path}: cannot tell the format from the name; name it .csv, .csv.gz or .parquet"
    )


def _check_parts_directory(path: Path, files: int) -> None:
    """``path`` can be the directory that receives ``files`` part files."""
    name = path.name.lower()
    suffix = next((s for s in _FILE_SUFFIXES if name.endswith(s)), None)
    if suffix is not None:
        raise UsageError(
            f"{path}: {files} part files go into a directory, and this is a file name "
            f"({suffix}); name the directory without it, e.g. {path.name[: -len(suffix)]!r}"
        )
    if path.exists() and not path.is_dir():
        raise OutputError(
            f"{path}: exists and is not a directory; {files} part files need a directory"
        )


def _make_directory(path: Path) -> None:
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise OutputError(
            f"{path}: cannot create the directory ({exc.strerror or exc}); choose another path"
        ) from None


def _write_csv(sink: pa.NativeFile, chunks: Iterable[pa.Table]) -> None:
    """Write an unquoted header, then each chunk table, to ``sink``."""
    sink.write((",".join(COLUMNS) + "\n").encode())
    options = pacsv.WriteOptions(include_header=False, quoting_style="none")
    writer = pacsv.CSVWriter(sink, SCHEMA, write_options=options)
    for chunk in chunks:
        writer.write_table(chunk)
    writer.close()


def _write_file(path: Path, *, start_row: int, n_rows: int, seed: int, chunk_rows: int) -> None:
    """Write rows ``start_row ..`` of ``seed`` to ``path`` chunk by chunk, atomically."""
    chunks = (
        generate_table(min(chunk_rows, n_rows - done), seed=seed, start_row=start_row + done)
        for done in range(0, n_rows, chunk_rows)
    )
    fmt = _format_of(path)
    with atomic_path(path) as tmp:
        if fmt == "parquet":
            with pq.ParquetWriter(tmp, SCHEMA) as writer:
                for chunk in chunks:
                    writer.write_table(chunk)
        elif fmt == "csv.gz":
            with pa.CompressedOutputStream(str(tmp), "gzip") as sink:
                _write_csv(sink, chunks)
        else:
            with pa.OSFile(str(tmp), "wb") as sink:
                _write_csv(sink, chunks)


def generate_files(
    path: Path,
    *,
    n_rows: int,
    files: int = 1,
    seed: int = 0,
    chunk_rows: int = 500_000,
) -> list[Path]:
    """Write ``n_rows`` synthetic rows and return the paths written.

    With ``files == 1`` the rows go to ``path`` (``.csv``, ``.csv.gz`` or ``.parquet``
    by its name; other names are refused); otherwise ``path`` is a directory (a name
    without a file extension) that receives ``part-00000.csv`` and so on, with
    RowNumber continuing and CustomerIds unique across the parts. Memory stays
    bounded by ``chunk_rows``; the output is byte-identical for the same arguments.
    Bad arguments raise ``UsageError`` before anything is written.
    """
    _require_at_least(
        n_rows=(n_rows, 0), files=(files, 1), chunk_rows=(chunk_rows, 1), seed=(seed, 0)
    )
    if files > MAX_FILES:
        raise UsageError(f"files must be <= {MAX_FILES:,}, got {files:,}")
    path = Path(path)
    if files == 1:
        _format_of(path)
        targets = [path]
    else:
        _check_parts_directory(path, files)
        _make_directory(path)
        targets = [path / f"part-{i:05d}.csv" for i in range(files)]
    start = 1
    for target, count in zip(targets, _split(n_rows, files), strict=True):
        _write_file(target, start_row=start, n_rows=count, seed=seed, chunk_rows=chunk_rows)
        start += count
    return targets
