"""What the reference job's map function does: one record at a time.

    python benchmarks/record_loop.py STATE MODEL INPUT.csv OUTPUT.csv

The csv module reads a record, Python computes its features from the state's
numbers, ONNX Runtime scores a 1-row matrix, the csv module writes the record's
CustomerId, raw and exited. A record that does not parse is skipped.
"""

from __future__ import annotations

import csv
import sys

import numpy as np
import onnxruntime as ort
from preset_numbers import PresetNumbers


def record_features(record: dict[str, str], numbers: PresetNumbers) -> list[float] | None:
    """One record's scaled features, or None when a value does not parse."""
    vector: list[float] = []
    for name in numbers.assembled:
        source = numbers.indexed.get(numbers.onehot.get(name, name))
        if source is not None and record[source] not in numbers.labels[source]:
            return None
        if name in numbers.onehot:
            labels = numbers.labels[source]
            vector += [1.0 if label == record[source] else 0.0 for label in labels]
        elif name in numbers.indexed:
            vector.append(float(numbers.labels[source].index(record[source])))
        else:
            try:
                vector.append(float(record[name]))
            except ValueError:
                return None
    return [(v - m) / s for v, m, s in zip(vector, numbers.mean, numbers.std, strict=True)]


def main(state: str, model: str, source: str, target: str) -> None:
    numbers = PresetNumbers.load(state)
    session = ort.InferenceSession(model, providers=["CPUExecutionProvider"])
    name = session.get_inputs()[0].name
    with open(source, newline="") as src, open(target, "w", newline="") as dst:
        writer = csv.writer(dst)
        writer.writerow(["CustomerId", "raw", "exited"])
        for record in csv.DictReader(src):
            vector = record_features(record, numbers)
            if vector is None:
                continue
            matrix = np.array([vector], dtype=np.float32)
            raw = float(session.run(["probabilities"], {name: matrix})[0][0, 1])
            writer.writerow([record["CustomerId"], raw, raw > 0.5])


if __name__ == "__main__":
    main(*sys.argv[1:5])
