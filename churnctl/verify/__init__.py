"""Proof that every runtime scores alike: one sample of the data through each, compared.

``verify_runtimes`` writes a sample of the input (``sample``: its first rows, each
numbered in a column of its own), scores it through every runtime into a temporary
folder (``runtimes``: ``score_file``, ``score_files`` with two workers, a ``Watcher``
run once, the embedded Flink job when the extra and Java are there), and compares each
runtime's scored rows and rejects with ``score_file``'s (``compare``). This package sits
above ``watch`` and ``flink``: it is the one place that runs them side by side.
"""

from churnctl.verify.compare import RuntimeResult, VerifyReport
from churnctl.verify.run import verify_runtimes

__all__ = ["RuntimeResult", "VerifyReport", "verify_runtimes"]
