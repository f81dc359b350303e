#!/usr/bin/env bash
# The GPU paths CI cannot run, checked on a machine with one GPU (H100/H200: about 8 minutes), read in one screen:
# environment, the bf16 dtype probe, demo training in bf16 with an injected NaN + resume + coding, bench train /
# memory / codec, the CUDA coding tests. Every step reports pass/fail/time; a JSON summary and the table land in
# --out (default runs/gpu_check).
#   benchmarks/gpu_check.sh              on the GPU (preset nvc1b, bf16)
#   benchmarks/gpu_check.sh --cpu-smoke  the same steps with tiny in fp32 on the CPU (CI runs this)
set -uo pipefail
cd "$(dirname "$0")/.."
if [ -n "${PYTHON:-}" ]; then py=$PYTHON
elif [ -x .venv/bin/python ]; then py=.venv/bin/python
else py=python3
fi
export OMP_NUM_THREADS="${OMP_NUM_THREADS:-$(( $(nproc) < 8 ? $(nproc) : 8 ))}"
exec "$py" benchmarks/gpu_check.py "$@"
