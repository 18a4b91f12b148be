"""The Flink job as a short, readable Python file that imports churnctl.

Every value is written as a Python literal (``repr``): a path holding quotes,
backslashes or line breaks stays one string and cannot inject code.
"""

from __future__ import annotations

from dataclasses import fields

from churnctl.flink_job import FlinkJobSpec

_TEMPLATE = '''\
"""A churnctl scoring job for Apache Flink, written by `churnctl flink-submit --emit`.

Run it on an embedded local Flink with `python job.py`, or on a Flink session
cluster with `flink run -m HOST:PORT -py /absolute/path/to/job.py`. It needs
churnctl with its Flink extra (`pip install 'churnctl[flink]'`) and Java 17.
The job reads CSV with Flink's filesystem connector, scores every batch with
churnctl's Scorer (the state and model below, read here and shipped to the
workers inside the job) and writes scored/ and rejects/ part files under out_dir.
"""

from churnctl.flink_job import FlinkJobSpec, run_job

SPEC = FlinkJobSpec(
    # what to read: a CSV file, or a folder of CSV files that share this header
    input={input},
    columns={columns},
    # their field delimiter, and the decimal mark of their numbers ("." or ",")
    delimiter={delimiter},
    decimal={decimal},
    # where to write: scored/ (kept columns, raw, exited) and rejects/ part files
    out_dir={out_dir},
    # the feature state and the ONNX model bound to it
    state={state},
    model={model},
    keep={keep},
    threshold={threshold},
    allow_state_mismatch={allow_state_mismatch},
    # bounded (batch), or streaming: the folder is listed every monitor_interval
    # and sink files are committed at each checkpoint, exactly once
    streaming={streaming},
    monitor_interval={monitor_interval},
    checkpoint_interval={checkpoint_interval},
    parallelism={parallelism},
    # the Python that runs the scoring workers (on a cluster: the workers' own)
    python_executable={python_executable},
)

if __name__ == "__main__":
    run_job(SPEC)
'''


def render_job(spec: FlinkJobSpec) -> str:
    """The job file's text for ``spec``."""
    values = {f.name: repr(getattr(spec, f.name)) for f in fields(spec)}
    return _TEMPLATE.format(**values)
