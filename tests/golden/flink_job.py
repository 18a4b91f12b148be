#!/opt/venv/bin/python
"""A churnctl scoring job for Apache Flink, written by `churnctl flink-submit`.

It needs a Python with churnctl and its Flink extra (`pip install 'churnctl[flink]'`)
and Java 17: python_executable below, which the first line names, so that `./job.py`
runs it on an embedded local Flink, as does `PYTHON job.py` (another Python fails with
"No module named 'churnctl'"). On a Flink session cluster, with the apache-flink
package's bin/flink: `flink run -m HOST:PORT -py /absolute/path/to/job.py
-pyclientexec PYTHON -pyexec PYTHON`.

The job reads CSV with Flink's filesystem connector, scores every batch with
churnctl's Scorer (the state and model below, read here and shipped to the
workers inside the job) and writes scored/ and rejects/ part files under out_dir.
"""

from churnctl.flink_job import FlinkJobSpec, run_job

SPEC = FlinkJobSpec(
    # what to read: a CSV file, or a folder of CSV files that share this header
    input='/data/landing/customers.csv',
    columns=('RowNumber', 'CustomerId', 'Surname', 'CreditScore', 'Geography', 'Gender', 'Age', 'Tenure', 'Balance', 'NumOfProducts', 'HasCrCard', 'IsActiveMember', 'EstimatedSalary', 'Exited'),
    # their field delimiter, and the decimal mark of their numbers ("." or ",")
    delimiter=';',
    decimal=',',
    # where to write: scored/ (kept columns, raw, exited) and rejects/ part files
    out_dir='/data/scored',
    # the feature state and the ONNX model bound to it
    state='/models/state.json',
    model='/models/churn_mlp.onnx',
    keep=('CustomerId', 'Surname'),
    threshold=0.4,
    allow_state_mismatch=False,
    # bounded (batch), or streaming: the folder is listed every monitor_interval
    # and sink files are committed at each checkpoint, exactly once
    streaming=True,
    monitor_interval='500 ms',
    checkpoint_interval='2 s',
    parallelism=2,
    # the Python that runs the scoring workers (on a cluster: the workers' own)
    python_executable='/opt/venv/bin/python',
)

if __name__ == "__main__":
    run_job(SPEC)
