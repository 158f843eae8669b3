#!/usr/bin/env bash
# The fast tests (no container engine, no stack server, nothing slow) in a second virtualenv
# installed at the LOWEST versions pyproject.toml declares (`uv pip install --resolution
# lowest-direct`): a floor that is not true (code needing a newer release than it admits)
# fails here. The newest versions are the main environment's (.venv, scripts/stack.sh).
# Expects the stack's environment to be sourced (scripts/test does it).
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$here"
venv="$here/.venv-lowest"
uv="$here/.venv/bin/uv"  # uv comes with nexusify (a base dependency) in the main environment
[ -x "$uv" ] || { echo "[lowest] $uv is missing: run scripts/stack.sh first" >&2; exit 1; }
stamp="$venv/.nexusify-installed"
if [ ! -f "$stamp" ] || [ "$here/pyproject.toml" -nt "$stamp" ]; then
  echo "[lowest] installing nexusify[dev] at the lowest declared versions into $venv" >&2
  rm -rf "$venv"
  "$uv" venv -q --python "$(command -v python3)" "$venv"
  VIRTUAL_ENV="$venv" "$uv" pip install -q --resolution lowest-direct -e "$here[dev]" >&2
  touch "$stamp"
fi
echo "[lowest] $("$venv/bin/python" -c 'import importlib.metadata as m; print(", ".join(f"{n} {m.version(n)}" for n in ("tomlkit", "packaging", "httpx", "rich", "uv", "docker", "alembic", "pytest")))')" >&2
# test_quality runs ruff and mypy: the project lints with its newest tools only
PATH="$venv/bin:$PATH" exec "$venv/bin/python" -m pytest -p no:cacheprovider -q \
  -m "not engine and not stack and not slow" --ignore=tests/test_quality.py tests
