"""The floor: the least a script can do to score a CSV file with a state and an ONNX model.

    python benchmarks/floor.py STATE MODEL INPUT.csv OUTPUT.csv

It reads only the needed columns (typed) with pyarrow, computes the reference
pipeline's features with numpy from the state's numbers, makes one ONNX Runtime
call, and writes CustomerId, raw and exited with pyarrow. No validation, no
rejects, the whole file in memory: the speed churnctl's ``score`` is set against.
"""

from __future__ import annotations

import sys

import numpy as np
import onnxruntime as ort
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
from preset_numbers import PresetNumbers


def features(table: pa.Table, numbers: PresetNumbers) -> np.ndarray:
    """The scaled feature matrix (float32), columns in the assembled order."""
    blocks = []
    for name in numbers.assembled:
        if name in numbers.onehot:
            source = numbers.indexed[numbers.onehot[name]]
            index = pc.index_in(table[source], pa.array(numbers.labels[source])).to_numpy()
            blocks.append(np.eye(len(numbers.labels[source]))[index])
        elif name in numbers.indexed:
            source = numbers.indexed[name]
            labels = pa.array(numbers.labels[source])
            blocks.append(pc.index_in(table[source], labels).to_numpy()[:, None].astype(float))
        else:
            blocks.append(table[name].to_numpy()[:, None])
    matrix = np.hstack(blocks)
    return ((matrix - np.array(numbers.mean)) / np.array(numbers.std)).astype(np.float32)


def main(state: str, model: str, source: str, target: str) -> None:
    numbers = PresetNumbers.load(state)
    types = {name: pa.float64() for name in numbers.numeric}
    types.update({name: pa.string() for name in [*numbers.labels, "CustomerId"]})
    options = pacsv.ConvertOptions(column_types=types, include_columns=list(types))
    table = pacsv.read_csv(source, convert_options=options)
    session = ort.InferenceSession(model, providers=["CPUExecutionProvider"])
    name = session.get_inputs()[0].name
    probabilities = session.run(["probabilities"], {name: features(table, numbers)})[0]
    raw = probabilities[:, 1].astype(np.float64)
    out = pa.table({"CustomerId": table["CustomerId"], "raw": raw, "exited": raw > 0.5})
    pacsv.write_csv(out, target)


if __name__ == "__main__":
    main(*sys.argv[1:5])
