#!/usr/bin/env bash
# One entry point for set-up and the two everyday commands (see README):
#   ./dev.sh demo   install everything, then score the bundled sample with the bundled model
#   ./dev.sh test   install everything, then run the linters and the whole test suite; then
#                   run the suite again, less Flink tests, on the newest releases (.venv-latest/)
# Needs only python3 (>= 3.11) and, for the Flink extra, Java 11 or newer. Installs uv in .tools/,
# then the locked environment (uv.lock) in .venv/.
set -euo pipefail
cd "$(dirname "$0")"
unset PYTHONDONTWRITEBYTECODE  # cached bytecode makes the test suite's start-up several times faster
UV_VERSION=0.13.9

ensure_env() {
  if [ ! -x .tools/bin/uv ]; then
    python3 -m venv .tools
    .tools/bin/python -m pip install --quiet --disable-pip-version-check "uv==${UV_VERSION}"
  fi
  .tools/bin/uv sync --frozen --all-extras --quiet --compile-bytecode
}

# The lock holds pyarrow and numpy where the flink extra (apache-flink, apache-beam) allows;
# a plain `pip install churnctl` gets today's releases. This second environment has those:
# the project editable with the train extra (not flink) and the dev group, resolved anew to
# the newest releases, on the locked environment's Python.
ensure_latest_env() {
  .tools/bin/uv venv --clear --quiet --python .venv/bin/python .venv-latest
  .tools/bin/uv pip install --quiet --compile-bytecode --python .venv-latest/bin/python --upgrade \
    -e '.[train]' --group dev
  .venv-latest/bin/python -c 'from importlib.metadata import version as v
print("newest releases:", *(f"{p} {v(p)}" for p in ("pyarrow", "numpy", "onnxruntime", "pandas")))'
}

case "${1:-}" in
  demo)
    ensure_env
    mkdir -p out
    .venv/bin/churnctl score data/sample.csv -o out/sample.scored.csv
    head -n 6 out/sample.scored.csv
    ;;
  test)
    ensure_env
    .venv/bin/ruff check .
    .venv/bin/ruff format --check .
    .venv/bin/python -m pytest "${@:2}"
    ensure_latest_env
    .venv-latest/bin/python -m pytest -x -q -m "not flink" "${@:2}"
    ;;
  *)
    echo "usage: ./dev.sh demo | ./dev.sh test [pytest args]" >&2
    exit 2
    ;;
esac
