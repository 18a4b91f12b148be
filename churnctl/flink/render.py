"""The Flink job as a short, readable Python file that imports churnctl.

Every value is written as a Python literal (``repr``): a path holding quotes,
backslashes or line breaks stays one string and cannot inject code. The first
line names the Python to run it with (``#!``), when its path can be spelled there.
"""

from __future__ import annotations

import re
from dataclasses import fields

from churnctl.flink.job import FlinkJobSpec

# What a "#!" line can name: an absolute path, nothing the kernel would split or end it at
_SHEBANG_SAFE = re.compile(r"/[^\s\x00-\x1f\x7f]*")
_SHEBANG_BYTES = 125  # a "#!" line within 128 bytes, all Linux kernels read (256 from 5.1)

_TEMPLATE = '''\
{shebang}"""A churnctl scoring job for Apache Flink, written by `churnctl flink-submit`.

It needs a Python with churnctl and its Flink extra (`pip install 'churnctl[flink]'`)
and Java 11 or newer: python_executable below, which the first line names, so that `./job.py`
runs it on an embedded local Flink, as does `PYTHON job.py` (another Python fails with
"No module named 'churnctl'"). On a Flink session cluster, with the apache-flink
package's bin/flink: `flink run -m HOST:PORT -py /absolute/path/to/job.py
-pyclientexec PYTHON -pyexec PYTHON`.

Flink lists the input files; each file is read and scored by churnctl's own
reader and Scorer (the state and model below, read here and shipped to the
workers inside the job), and scored/, rejects/ and files/ part files are
written under out_dir.
"""

from churnctl.flink.job import FlinkJobSpec, run_job

SPEC = FlinkJobSpec(
    # what to read: a CSV or Parquet file, or a folder of them (each file by its own header)
    input={input},
    # their field delimiter, text encoding, and the decimal mark of their numbers
    delimiter={delimiter},
    encoding={encoding},
    decimal={decimal},
    # where to write: scored/, rejects/ and files/ part files (their columns: _schema.json)
    out_dir={out_dir},
    # the feature state and the ONNX model bound to it
    state={state},
    model={model},
    keep={keep},
    threshold={threshold},
    logits={logits},
    allow_state_mismatch={allow_state_mismatch},
    # bounded (batch), or streaming: the folder is listed every monitor_interval, a file is
    # read once it held still for settle seconds, and outputs are committed at checkpoints
    streaming={streaming},
    monitor_interval={monitor_interval},
    settle={settle},
    checkpoint_interval={checkpoint_interval},
    # streaming: checkpoints are kept here, and a new run resumes from the latest one
    checkpoint_dir={checkpoint_dir},
    parallelism={parallelism},
    # the Python that runs the scoring workers (on a cluster: the workers' own)
    python_executable={python_executable},
)


def submitted(job_id: str) -> None:
    print(f"Job has been submitted with JobID {{job_id}}", flush=True)


if __name__ == "__main__":
    run_job(SPEC, on_submitted=submitted)
'''


def render_job(spec: FlinkJobSpec) -> str:
    """The job file's text for ``spec``."""
    values = {f.name: repr(getattr(spec, f.name)) for f in fields(spec)}
    return _TEMPLATE.format(shebang=shebang(spec.python_executable), **values)


def shebang(python: str) -> str:
    """``#!PYTHON`` and a line break, or nothing when ``python`` cannot be spelled there."""
    safe = _SHEBANG_SAFE.fullmatch(python) and python.isprintable()
    return f"#!{python}\n" if safe and len(python.encode()) <= _SHEBANG_BYTES else ""
