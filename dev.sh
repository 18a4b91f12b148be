#!/usr/bin/env bash
# One entry point for set-up and the two everyday commands (see README):
#   ./dev.sh demo   install everything, then score the bundled sample with the bundled model
#   ./dev.sh test   install everything, then run the linters and the whole test suite
# Needs only python3 (>= 3.11) and, for the Flink extra, Java 17. Installs uv in .tools/,
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
  .tools/bin/uv sync --frozen --all-extras --quiet
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
    ;;
  *)
    echo "usage: ./dev.sh demo | ./dev.sh test [pytest args]" >&2
    exit 2
    ;;
esac
