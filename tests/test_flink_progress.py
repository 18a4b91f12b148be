"""Progress of a running job from Flink's REST API, against a loopback stand-in for it."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path
from typing import Any

import pytest

from churnctl.flink.job import FILES_DONE_METRIC
from churnctl.flink.progress import embedded_rest_address, files_done

JOB = "a" * 32
SCORING = "churnctl: score each file -> (Filter, Map -> scored/: Writer, Map -> files/: Writer)"
ANSWERS: dict[str, Any] = {
    f"/jobs/{JOB}": {
        "vertices": [{"id": "v1", "name": "Source: input_files[1]"}, {"id": "v2", "name": SCORING}]
    },
    f"/jobs/{JOB}/vertices/v2/subtasks/metrics?get=files%2F__Writer.numRecordsIn&agg=sum": [
        {"id": FILES_DONE_METRIC, "sum": 7.0}
    ],
}


class Handler(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        body = json.dumps(ANSWERS[self.path]).encode() if self.path in ANSWERS else b"{}"
        self.send_response(200 if self.path in ANSWERS else 404)
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def rest() -> Iterator[str]:
    server = HTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


def test_files_done_is_the_files_sink_record_count(rest: str) -> None:
    assert files_done(rest, JOB) == 7


def test_a_job_flink_does_not_know_gives_none(rest: str) -> None:
    assert files_done(rest, "b" * 32) is None


def test_nothing_listening_gives_none() -> None:
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    assert files_done(f"127.0.0.1:{port}", JOB) is None


def test_the_embedded_address_is_read_from_flink_s_log(tmp_path: Path) -> None:
    assert embedded_rest_address(tmp_path) is None
    (tmp_path / "flink-root-python-vm.log").write_text(
        "... INFO DispatcherRestEndpoint [] - Starting rest endpoint.\n"
        "... INFO DispatcherRestEndpoint [] - Rest endpoint listening at localhost:33229\n"
    )
    assert embedded_rest_address(tmp_path) == "localhost:33229"
