#!/usr/bin/env bash
# One prepared GPU check, at most 8 minutes, for a session that has a CUDA machine. Installs nothing.
#   bash bench/gpu_check.sh            (from the repository root or anywhere)
# It runs the bench at 4x the CPU sizes on CUDA (features, greedy coreset, kNN, LOF), checks that CUDA
# and CPU agree (greedy coreset overlap, faiss vs torch distances, LOF vs scikit-learn), prints the
# figures and the full-paper-run estimate for 1, 8 and all visible GPUs, writes results/bench/*_cuda.csv, and,
# with two or more GPUs, checks that two concurrent jobs land on different devices.
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
import faiss
gpus = faiss.get_num_gpus() if hasattr(faiss, "get_num_gpus") else 0
print(f"faiss {faiss.__version__}: {gpus} GPU(s)" + ("" if gpus else
      " - the kNN rows below use torch on the GPU; for faiss-gpu run bash envs/install-faiss-gpu.sh first"))
PYEOF
timeout -k 10 420 "$PY" bench/run.py --device cuda --scale 4 --threads "$(nproc)" --greedy-sizes 200000 \
  --sections features,greedy,knn,lof,estimate
# With two or more GPUs: two concurrent jobs must land on different devices (tailedcore.runtime.gpu slots).
"$PY" - <<'PYEOF'
import json, os, subprocess, sys, tempfile
import torch
count = torch.cuda.device_count()
if count < 2:
    print(f"gpu slots: {count} GPU visible, the two-job check needs 2 (skipped)")
    sys.exit(0)
job = r'''
import json, os, time
from tailedcore.runtime.gpu import claim_gpu
slot = claim_gpu()
import torch
x = torch.ones(1024, 1024, device="cuda"); torch.cuda.synchronize()
props = torch.cuda.get_device_properties(0)
print(json.dumps({"slot": slot.index, "visible": os.environ["CUDA_VISIBLE_DEVICES"],
                  "uuid": str(getattr(props, "uuid", "")), "name": props.name}), flush=True)
time.sleep(3)
'''
env = {**os.environ, "TAILEDCORE_GPU_LOCK_DIR": tempfile.mkdtemp(prefix="gpu-slots-")}
jobs = [subprocess.Popen([sys.executable, "-c", job], stdout=subprocess.PIPE, text=True, env=env) for _ in range(2)]
seen = [json.loads(p.communicate(timeout=120)[0].splitlines()[-1]) for p in jobs]
print("gpu slots:", seen)
if len({s["slot"] for s in seen}) != 2 or len({s["uuid"] for s in seen}) != 2:
    sys.exit("gpu slots: two concurrent jobs shared a device")
print(f"gpu slots: two concurrent jobs on two different devices of {count} [met]")
PYEOF
