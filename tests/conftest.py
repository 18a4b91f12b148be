"""Fixtures shared by the test files. The shared plain helpers (the CLI in-process, its text,
the environment of child processes) live in ``cli_helpers``; ``watch_helpers`` drives real
``churnctl watch`` processes."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from cli_helpers import run
from watch_helpers import RowPool, Watchers

from churnctl.features.validated_states import CACHE_ENV

CACHE_KEY = pytest.StashKey[tuple[str, str | None]]()


def pytest_configure(config: pytest.Config) -> None:
    """The records of validated states go to a folder of the session's, never the user's
    cache: set before collection, so that every child inherits it, even through an
    environment a test module builds at import."""
    folder = tempfile.mkdtemp(prefix="churnctl-test-cache-")
    config.stash[CACHE_KEY] = (folder, os.environ.get(CACHE_ENV))
    os.environ[CACHE_ENV] = folder


def pytest_unconfigure(config: pytest.Config) -> None:
    folder, previous = config.stash[CACHE_KEY]
    shutil.rmtree(folder, ignore_errors=True)
    if previous is None:
        os.environ.pop(CACHE_ENV, None)
    else:
        os.environ[CACHE_ENV] = previous


@pytest.fixture
def watchers(tmp_path: Path) -> Iterator[Watchers]:
    """Watcher processes started by the test; each one still running is killed at the end."""
    started = Watchers(tmp_path)
    try:
        yield started
    finally:
        started.close()


@pytest.fixture
def folders(tmp_path: Path) -> tuple[Path, Path]:
    """An empty landing folder and an output folder not made yet."""
    in_dir, out_dir = tmp_path / "in", tmp_path / "out"
    in_dir.mkdir()
    return in_dir, out_dir


@pytest.fixture
def pool() -> RowPool:
    """Rows whose CustomerIds are unique across the test."""
    return RowPool()


@pytest.fixture(scope="module")
def sklearn_state(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Fitted with ``fit --pipeline sklearn`` on the sample: the reference state's 12
    features in another order (the skew that binding exists to catch)."""
    from churnctl.samples.bundled import SAMPLE, bundled

    path = tmp_path_factory.mktemp("sklearn-state") / "sk.json"
    assert run(["fit", bundled(SAMPLE), "--pipeline", "sklearn", "-o", path]).exit_code == 0
    return path
