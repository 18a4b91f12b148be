"""Bytes <-> Arrow batches: sources, sinks, rejects, listings of input files.

Layer 2: imports ``features`` (the input policy) and the ground, never ``scoring``.
"""
