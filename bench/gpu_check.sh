#!/usr/bin/env bash
# One prepared GPU check, at most 8 minutes, for a session that has a CUDA machine. Installs nothing.
#   bash bench/gpu_check.sh            (from the repository root or anywhere)
# It runs the bench at 4x the CPU sizes on CUDA (features, greedy coreset, kNN, LOF), checks that CUDA
# and CPU agree (greedy coreset overlap, faiss vs torch distances, LOF vs scikit-learn), prints the
# figures and the full-paper-run estimate, and writes results/bench/*_cuda.csv.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-}
if [ -z "$PY" ]; then
  if [ -x .venv/bin/python ]; then PY=.venv/bin/python; else PY=python3; fi
fi
"$PY" - <<'PYEOF'
import sys
try:
    import numba, torch  # noqa: F401
    import tailedcore  # noqa: F401
except ImportError as err:
    sys.exit(f"gpu_check: {err}; install the project first (pip install -e .), then rerun")
if not torch.cuda.is_available():
    sys.exit("gpu_check: torch sees no CUDA device (torch %s, CUDA build %s)" % (torch.__version__, torch.version.cuda))
print("GPU:", torch.cuda.get_device_name(0), "| torch", torch.__version__, "| CUDA", torch.version.cuda)
PYEOF
timeout -k 10 470 "$PY" bench/run.py --device cuda --scale 4 --threads "$(nproc)" \
  --sections features,greedy,knn,lof,estimate
