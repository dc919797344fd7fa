#!/usr/bin/env bash
# Swap faiss-cpu for faiss-gpu (the same faiss version, built with CUDA) in the project's venv, so that the
# kNN search and the auto backend choice run faiss on the GPU. Both wheels install the one import name
# `faiss`: they must never sit side by side, so faiss-cpu is removed first.
#   bash envs/install-faiss-gpu.sh              (uses .venv/bin/python, else python3; PY=... to choose)
#   bash envs/install-faiss-gpu.sh --dry-run    (only resolves the install; changes nothing)
# Afterwards reinstall the project with `pip install -e . --no-deps` (plain `pip install -e .` would add
# faiss-cpu back). To go back: pip uninstall -y faiss-gpu && pip install faiss-cpu==1.15.1
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-}
if [ -z "$PY" ]; then
  if [ -x .venv/bin/python ]; then PY=.venv/bin/python; else PY=python3; fi
fi
VERSION=1.15.1  # = the faiss-cpu pin of envs/tailedcore.yaml
if [ "${1:-}" = "--dry-run" ]; then
  exec "$PY" -m pip install --dry-run --quiet --no-deps "faiss-gpu==$VERSION"
fi
"$PY" -m pip uninstall -y faiss-cpu
"$PY" -m pip install "faiss-gpu==$VERSION"
"$PY" - <<'PYEOF'
import faiss
gpus = faiss.get_num_gpus()
print(f"faiss {faiss.__version__}: {gpus} GPU(s) visible" + ("" if gpus else " (none: faiss runs on the CPU here)"))
PYEOF
