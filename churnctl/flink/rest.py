"""A Flink cluster's REST endpoint: is an address one (before ``flink run``), and cancel a job.

Every call is bounded as a whole, from connecting to the answer's last byte: a
server that accepts and says nothing, or drips its answer, cannot hold it longer.
Plain HTTP, no proxy from the environment: the address is the cluster's own, as
``flink run -m HOST:PORT`` takes it.
"""

from __future__ import annotations

import contextlib
import http.client
import json
import socket
import threading

from churnctl.errors import Fix, FlinkError, UsageError

REST_TIMEOUT = 10.0  # seconds, in all, for one call
ANSWER_LIMIT = 1 << 20  # bytes of an answer read at most
_REST_FIX = Fix("jobmanager", "127.0.0.1:8081", "(the cluster's REST address, rest.port)")


def split_address(jobmanager: str) -> tuple[str, int]:
    """``HOST:PORT`` (``[::1]:8081`` too) as (host, port); a UsageError otherwise."""
    host, _, port = jobmanager.rpartition(":")
    if not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise UsageError(
            f"the job manager must be HOST:PORT, got {jobmanager!r}",
            fix=Fix("jobmanager", "127.0.0.1:8081"),
        )
    return host.removeprefix("[").removesuffix("]"), int(port)


def check_rest(jobmanager: str, timeout: float | None = None) -> str:
    """The Flink version whose REST endpoint answers at ``jobmanager``; a FlinkError naming
    the address otherwise (refused, no answer in time, or an answer that is not Flink's).

    ``timeout``: the bound in seconds, ``REST_TIMEOUT`` by default.
    """
    timeout = REST_TIMEOUT if timeout is None else timeout
    status, reason, body = request(jobmanager, "GET", "/config", timeout)
    try:
        config = json.loads(body)
    except ValueError:
        config = None
    version = config.get("flink-version") if isinstance(config, dict) else None
    if status != 200 or not version:
        raise FlinkError(
            f"{jobmanager} answers HTTP ({status} {reason}) but is not a Flink "
            "REST endpoint: GET /config gave no flink-version",
            fix=_REST_FIX,
        )
    return str(version)


def cancel_job(jobmanager: str, job_id: str, timeout: float = REST_TIMEOUT) -> bool:
    """Ask the cluster to cancel ``job_id`` (best effort); whether it accepted."""
    try:
        status, _, _ = request(jobmanager, "PATCH", f"/jobs/{job_id}?mode=cancel", timeout)
    except (FlinkError, UsageError):
        return False
    return status in (200, 202)


def request(jobmanager: str, method: str, path: str, timeout: float) -> tuple[int, str, bytes]:
    """One HTTP call to ``jobmanager``: (status, reason, body); a FlinkError naming it."""
    host, port = split_address(jobmanager)
    connection = http.client.HTTPConnection(host, port, timeout=timeout)
    deadline = _Deadline(connection, timeout)
    try:
        try:
            connection.connect()
        except OSError as exc:
            raise FlinkError(
                f"cannot reach the Flink cluster at {jobmanager} "
                f"({_reason(exc, timeout)}); is it running?"
            ) from None
        try:
            connection.request(method, path, headers={"Accept": "application/json"})
            response = connection.getresponse()
            answer = response.status, response.reason, response.read(ANSWER_LIMIT)
        except (OSError, http.client.HTTPException) as exc:
            raise _not_rest(jobmanager, exc, timeout, deadline.expired.is_set()) from None
        if deadline.expired.is_set():  # cut short: what was read is not the whole answer
            raise _not_rest(jobmanager, TimeoutError(), timeout, True)
        return answer
    finally:
        deadline.cancel()
        connection.close()


def _not_rest(jobmanager: str, exc: Exception, timeout: float, expired: bool) -> FlinkError:
    if expired or isinstance(exc, TimeoutError):
        what = f"sent no answer within {timeout:g} s"
    else:
        what = f"gave no HTTP answer ({_reason(exc, timeout)})"
    return FlinkError(
        f"{jobmanager} accepted the connection but {what}: it is not a Flink REST endpoint",
        fix=_REST_FIX,
    )


def _reason(exc: BaseException, timeout: float) -> str:
    if isinstance(exc, TimeoutError):
        return f"no connection within {timeout:g} s"
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror
    return str(exc) or type(exc).__name__


class _Deadline:
    """Cuts ``connection``'s socket once ``seconds`` have passed: the whole call's bound."""

    def __init__(self, connection: http.client.HTTPConnection, seconds: float) -> None:
        self.expired = threading.Event()
        self._connection = connection
        self._timer = threading.Timer(seconds, self._expire)
        self._timer.daemon = True
        self._timer.start()

    def _expire(self) -> None:
        self.expired.set()
        sock = self._connection.sock
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)

    def cancel(self) -> None:
        self._timer.cancel()
