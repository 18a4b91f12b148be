"""The streaming runtime over a folder: arrivals, the manifest, disposal, the ``Watcher``.

Layer 4: built on ``batch``; independent of ``flink``.
"""
