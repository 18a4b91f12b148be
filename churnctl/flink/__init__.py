"""The Flink runtime: the job (listing, sinks, checkpoints), its rendering and its submission.

Layer 4: built on ``batch``; independent of ``watch``.
"""
