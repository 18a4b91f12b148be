#!/opt/venv/bin/python
"""A churnctl scoring job for Apache Flink, written by `churnctl flink-submit`.

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
    input='/data/landing/customers.csv',
    # their field delimiter, text encoding, and the decimal mark of their numbers
    delimiter=';',
    encoding='latin-1',
    decimal=',',
    # where to write: scored/, rejects/ and files/ part files (their columns: _schema.json)
    out_dir='/data/scored',
    # the feature state and the ONNX model bound to it
    state='/models/state.json',
    model='/models/churn_mlp.onnx',
    keep=('CustomerId', 'Surname'),
    threshold=0.4,
    logits=True,
    allow_state_mismatch=False,
    # bounded (batch), or streaming: the folder is listed every monitor_interval, a file is
    # read once it held still for settle seconds, and outputs are committed at checkpoints
    streaming=True,
    monitor_interval='500 ms',
    settle=0.5,
    checkpoint_interval='2 s',
    # streaming: checkpoints are kept here, and a new run resumes from the latest one
    checkpoint_dir='/data/scored/.churnctl-flink/checkpoints',
    parallelism=2,
    # the Python that runs the scoring workers (on a cluster: the workers' own)
    python_executable='/opt/venv/bin/python',
)


def submitted(job_id: str) -> None:
    print(f"Job has been submitted with JobID {job_id}", flush=True)


if __name__ == "__main__":
    run_job(SPEC, on_submitted=submitted)
