"""What users write with pandas and scikit-learn: a fitted ColumnTransformer, then ORT.

    python benchmarks/sklearn_baseline.py STATE MODEL INPUT.csv OUTPUT.csv

pandas reads the file; a ColumnTransformer (one-hot and ordinal encoders with the
state's labels, the numeric columns passed through, in the assembled order) and
a StandardScaler carrying the state's mean and std make the features (set from
the state rather than fitted again, so that the scores match churnctl's); ONNX
Runtime scores them in one call; pandas writes CustomerId, raw and exited.
"""

from __future__ import annotations

import sys

import numpy as np
import onnxruntime as ort
import pandas as pd
from preset_numbers import PresetNumbers
from sklearn.compose import ColumnTransformer
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import OneHotEncoder, OrdinalEncoder, StandardScaler


def transformer(numbers: PresetNumbers, sample: pd.DataFrame) -> object:
    """The ColumnTransformer + StandardScaler pipeline, fitted, with the state's numbers."""
    parts = []
    for name in numbers.assembled:
        if name in numbers.onehot:
            source = numbers.indexed[numbers.onehot[name]]
            encoder = OneHotEncoder(categories=[numbers.labels[source]], sparse_output=False)
            parts.append((name, encoder, [source]))
        elif name in numbers.indexed:
            source = numbers.indexed[name]
            parts.append((name, OrdinalEncoder(categories=[numbers.labels[source]]), [source]))
        else:
            parts.append((name, "passthrough", [name]))
    pipeline = make_pipeline(ColumnTransformer(parts), StandardScaler())
    pipeline.fit(sample)
    scaler = pipeline[-1]
    scaler.mean_, scaler.scale_ = np.array(numbers.mean), np.array(numbers.std)
    return pipeline


def main(state: str, model: str, source: str, target: str) -> None:
    numbers = PresetNumbers.load(state)
    frame = pd.read_csv(source)
    pipeline = transformer(numbers, frame.head(1000))
    matrix = pipeline.transform(frame).astype(np.float32)
    session = ort.InferenceSession(model, providers=["CPUExecutionProvider"])
    name = session.get_inputs()[0].name
    raw = session.run(["probabilities"], {name: matrix})[0][:, 1].astype(np.float64)
    out = pd.DataFrame({"CustomerId": frame["CustomerId"], "raw": raw, "exited": raw > 0.5})
    out.to_csv(target, index=False)


if __name__ == "__main__":
    main(*sys.argv[1:5])
