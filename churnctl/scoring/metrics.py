"""How good the scores are, given the labels: pure NumPy over (labels, raw, threshold).

Every figure equals scikit-learn's on the same predictions (``tests/test_evaluate.py``):
``auc`` is ``roc_auc_score`` (ties count one half, as the ROC curve's trapezoids do),
``log_loss`` is ``log_loss`` with scikit-learn 1.9's clipping (raw clipped to [ε, 1 - ε],
ε the machine epsilon of raw's own float type: float32 for a model's output),
``confusion`` is ``confusion_matrix(labels=[0, 1])``, ``precision`` and ``recall`` are
``precision_score`` and ``recall_score`` (0.0 when undefined, scikit-learn's default).
A row is predicted to exit when ``raw > threshold``, as every runtime decides.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

DECILES = 10


@dataclass(frozen=True)
class Confusion:
    """The confusion matrix at a threshold: true/false negatives and positives."""

    tn: int
    fp: int
    fn: int
    tp: int


@dataclass(frozen=True)
class Decile:
    """One tenth of the rows by raw, highest first: predicted and observed exit rates, lift."""

    decile: int  # 1: the highest raw
    rows: int
    raw_min: float
    raw_max: float
    raw_mean: float  # the predicted exit rate
    exited: int  # labelled 1
    rate: float  # the observed exit rate
    lift: float  # rate / the overall rate (0.0 when no row is labelled 1)


@dataclass(frozen=True)
class Metrics:
    """Every figure of ``evaluate``; ``auc`` is None when the labels hold one class only."""

    rows: int
    positives: int
    threshold: float
    auc: float | None
    log_loss: float
    confusion: Confusion
    precision: float
    recall: float
    deciles: tuple[Decile, ...]


def metrics(labels: np.ndarray, raw: np.ndarray, threshold: float) -> Metrics:
    """All figures for ``labels`` (0/1) and ``raw`` (probabilities), one pair per row."""
    y = np.asarray(labels).astype(np.int8)
    p = np.asarray(raw)
    confusion = confusion_at(y, p, threshold)
    return Metrics(
        rows=len(y),
        positives=int(y.sum()),
        threshold=threshold,
        auc=roc_auc(y, p),
        log_loss=log_loss(y, p),
        confusion=confusion,
        precision=_ratio(confusion.tp, confusion.tp + confusion.fp),
        recall=_ratio(confusion.tp, confusion.tp + confusion.fn),
        deciles=deciles(y, p),
    )


def roc_auc(labels: np.ndarray, raw: np.ndarray) -> float | None:
    """The area under the ROC curve, as the Mann-Whitney U with mid-ranks for ties."""
    y = np.asarray(labels).astype(bool)
    positives, negatives = int(y.sum()), int((~y).sum())
    if positives == 0 or negatives == 0:
        return None
    ranks = _mid_ranks(np.asarray(raw, dtype=np.float64))
    u = ranks[y].sum() - positives * (positives + 1) / 2
    return float(u / (positives * negatives))


def _mid_ranks(values: np.ndarray) -> np.ndarray:
    """1-based ranks, tied values sharing the mean of their ranks."""
    order = np.argsort(values, kind="mergesort")
    ordered = values[order]
    starts = np.flatnonzero(np.r_[True, ordered[1:] != ordered[:-1]])
    ends = np.r_[starts[1:], len(values)]
    mean_rank = (starts + ends + 1) / 2  # ranks starts+1 .. ends, averaged
    ranks = np.empty(len(values))
    ranks[order] = np.repeat(mean_rank, ends - starts)
    return ranks


def log_loss(labels: np.ndarray, raw: np.ndarray) -> float:
    """The mean negative log-likelihood, raw clipped as scikit-learn 1.9 clips it."""
    p = np.asarray(raw)
    if not np.issubdtype(p.dtype, np.floating):
        p = p.astype(np.float64)
    eps = np.finfo(p.dtype).eps
    exited = np.clip(p, eps, 1 - eps).astype(np.float64)
    stayed = np.clip(1 - p, eps, 1 - eps).astype(np.float64)  # 1 - p in raw's own type
    y = np.asarray(labels).astype(bool)
    if len(y) == 0:
        return float("nan")
    return float(-np.where(y, np.log(exited), np.log(stayed)).mean())


def confusion_at(labels: np.ndarray, raw: np.ndarray, threshold: float) -> Confusion:
    """The confusion matrix of ``raw > threshold`` against the labels."""
    y = np.asarray(labels).astype(bool)
    predicted = np.asarray(raw) > threshold
    return Confusion(
        tn=int((~y & ~predicted).sum()),
        fp=int((~y & predicted).sum()),
        fn=int((y & ~predicted).sum()),
        tp=int((y & predicted).sum()),
    )


def deciles(labels: np.ndarray, raw: np.ndarray) -> tuple[Decile, ...]:
    """Ten groups of rows by raw, highest first, sizes differing by one row at most.

    Rows of equal raw are ordered as they came (a stable sort), so a tie may straddle two
    deciles; fewer than ten rows give fewer groups.
    """
    y = np.asarray(labels).astype(np.int64)
    p = np.asarray(raw, dtype=np.float64)
    order = np.argsort(-p, kind="mergesort")
    overall = _ratio(int(y.sum()), len(y))
    groups = [g for g in np.array_split(order, DECILES) if len(g)]
    return tuple(_decile(i, y[g], p[g], overall) for i, g in enumerate(groups, 1))


def _decile(number: int, y: np.ndarray, p: np.ndarray, overall: float) -> Decile:
    rate = float(y.mean())
    return Decile(
        decile=number,
        rows=len(y),
        raw_min=float(p.min()),
        raw_max=float(p.max()),
        raw_mean=float(p.mean()),
        exited=int(y.sum()),
        rate=rate,
        lift=rate / overall if overall else 0.0,
    )


def _ratio(part: int, whole: int) -> float:
    return part / whole if whole else 0.0
