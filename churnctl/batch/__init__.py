"""Batch runtimes: fit a state on a file, score one file, score many files.

Layer 3: combines ``io`` and ``scoring``.
"""
