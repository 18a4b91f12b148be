"""Model + state -> scores: the ONNX model, its binding to a state, the ``Scorer``.

Pure over Arrow batches. Layer 2: imports ``features`` and the ground, never ``io``.
"""
