#!/usr/bin/env bash
# The two commands of the README: `./run.sh demo` and `./run.sh test`.
# Creates .venv and installs the project with its dev extras on first use.
set -euo pipefail
cd "$(dirname "$0")"
if [ ! -x .venv/bin/python ]; then
  python3 -m venv .venv
  .venv/bin/python -m pip install --quiet --upgrade pip
  .venv/bin/python -m pip install --quiet -e ".[dev]"
fi
export DO_NOT_TRACK=1
case "${1:-}" in
  demo) shift; exec .venv/bin/python -m prefect_iterable.flows.demo "$@" ;;
  test) shift; exec .venv/bin/python -m pytest -n 2 --dist loadfile "$@" ;;
  *) echo "usage: ./run.sh demo|test" >&2; exit 2 ;;
esac
