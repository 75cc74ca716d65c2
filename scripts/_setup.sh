# Shared set-up for scripts/demo and scripts/test: sourced, not run.
# Creates .venv if missing, installs the CPU build of torch when `import torch` fails
# (the default pip resolution is a multi-GB CUDA build), then the project itself.
# The dev extra brings the test and check tools (pytest, pytest-xdist, ruff, mypy; pinned there).
# A marker keyed on the hash of pyproject.toml skips the install when nothing changed.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
PY="${PYTHON:-python3}"
VENV="$ROOT/.venv"
if [ ! -x "$VENV/bin/python" ]; then
    echo "[inertia] creating $VENV"
    "$PY" -m venv "$VENV"
fi
VPY="$VENV/bin/python"
if ! "$VPY" -c "import torch" >/dev/null 2>&1; then
    echo "[inertia] installing torch==2.13.0 (CPU build)"
    "$VPY" -m pip install --quiet --disable-pip-version-check "torch==2.13.0"
fi
HASH="$("$VPY" -c 'import hashlib,sys; print(hashlib.sha256(open("pyproject.toml","rb").read()).hexdigest())')"
MARKER="$VENV/.inertia-installed-$HASH"
if [ ! -f "$MARKER" ]; then
    echo "[inertia] installing the project (pip install -e .[dev])"
    "$VPY" -m pip install --quiet --disable-pip-version-check -e ".[dev]"
    rm -f "$VENV"/.inertia-installed-*
    touch "$MARKER"
fi
export PATH="$VENV/bin:$PATH"
export MPLBACKEND=Agg
