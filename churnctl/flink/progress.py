"""How far a running Flink job is, from Flink's own REST API.

Flink counts the records each operator takes in; the ``files/`` sink takes one record
per input file done, so its count is the files scored so far (summed over workers).
An embedded job's MiniCluster listens on a port of its own choosing, which its log
(in the job's work folder) names. Nothing here raises: a job not yet (or no longer)
answering gives ``None``.
"""

from __future__ import annotations

import json
import re
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any

from churnctl.flink.job import FILES_DONE_METRIC

LISTENING = re.compile(r"Rest endpoint listening at (\S+:\d+)")
REQUEST_TIMEOUT = 2.0


def embedded_rest_address(log_dir: Path) -> str | None:
    """HOST:PORT of the embedded MiniCluster's REST endpoint (and web UI), once it listens."""
    for log in sorted(log_dir.glob("flink-*.log")):
        try:
            found = LISTENING.search(log.read_text(encoding="utf-8", errors="replace"))
        except OSError:
            continue
        if found:
            return found.group(1)
    return None


def files_done(address: str, job_id: str) -> int | None:
    """The input files the job has scored so far, or ``None`` if Flink does not say."""
    try:
        job = _get(address, f"/jobs/{job_id}")
        [vertex] = [v["id"] for v in job["vertices"] if "files/" in v["name"]]
        query = urllib.parse.urlencode({"get": FILES_DONE_METRIC, "agg": "sum"})
        values = _get(address, f"/jobs/{job_id}/vertices/{vertex}/subtasks/metrics?{query}")
        return int(float(values[0]["sum"])) if values else 0
    except (OSError, ValueError, KeyError, IndexError, TypeError):
        return None


def _get(address: str, path: str) -> Any:
    with urllib.request.urlopen(f"http://{address}{path}", timeout=REQUEST_TIMEOUT) as answer:
        return json.load(answer)
