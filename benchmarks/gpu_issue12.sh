#!/usr/bin/env bash
# Issue 12 on one GPU (written for the lent H200: 16 cores, torch 2.11, no network, project not
# installed), in under 7 minutes of wall time:
#   1. throughput: our GPT (preln, dnt) vs nanoGPT's model.py, fp32 and bf16 autocast   (≤ 45 s)
#   2. bound-overhead: AdamW² (certified bound) vs AdamW step time                        (≤ 25 s)
#   3. gpu-config: 6L/384/ctx256 preln+AdamW vs dnt+SGDW, bf16, GPU_ITERS steps           (≤ 130 s)
#   4. grid: {preln, dnt} × {AdamW, SGDW, Muon} at nanoGPT's CPU config, LR sweeps + 3 seeds (≤ 160 s)
# Each part runs under `timeout`; finished runs are cached as JSON, so a part cut short still reports
# what finished (`--report-only`), and a rerun with the same WORK folder resumes (extract a previous
# results.tar.gz into a folder and pass WORK=<folder> to continue a grid that ran out of time).
# Inputs (paths in the repository copy): .ref/data/tinyshakespeare.txt and .ref/nanogpt/model.py.
# Outputs, flat under $OUT (6 files, each well under 16 MB): log.txt, throughput_cuda.md,
# bound_overhead_cuda.md, gpu_config_cuda.md, grid_cuda.md and results.tar.gz (every report .md/.json
# + the run JSONs). DEVICE=cpu with tiny GPU_ITERS/GRID_ITERS is a dry run of the script itself.
set -u
cd "$(dirname "$0")/.."
OUT=${OUT:-/tmp/gpu_issue12_out}
WORK=${WORK:-$(mktemp -d)}
mkdir -p "$OUT" "$WORK"
export PYTHONPATH=src
export STRUCTLEARN_SHAKESPEARE=${STRUCTLEARN_SHAKESPEARE:-$PWD/.ref/data/tinyshakespeare.txt}
NANOGPT_DIR=${NANOGPT_DIR:-.ref/nanogpt}
GPU_ITERS=${GPU_ITERS:-1500}
GRID_ITERS=${GRID_ITERS:-2000}
WORKERS=${WORKERS:-18}
SGDW_LR=${SGDW_LR:-0.3}
GRID_LIMIT=${GRID_LIMIT:-160}  # seconds for the grid part
DEVICE=${DEVICE:-cuda}
PY=${PY:-python3}
SUF=$([ "$DEVICE" = cpu ] && echo "" || echo "_$DEVICE")
B="$PY benchmarks/bench_lm.py --device $DEVICE --out $WORK"
T0=$(date +%s)
{
  echo "gpu_issue12.sh: $(date -u), commit $(git rev-parse --short HEAD 2>/dev/null || echo unknown)"
  nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv 2>/dev/null || true
  $PY -c "import torch; print('torch', torch.__version__, torch.cuda.is_available() and torch.cuda.get_device_name(0))"
  ls -l "$STRUCTLEARN_SHAKESPEARE" "$NANOGPT_DIR/model.py" || true
  echo "== throughput"; timeout -k 5 "${TP_LIMIT:-70}" $B --part throughput --nanogpt-dir "$NANOGPT_DIR" --threads 4
  echo "== bound-overhead"; timeout -k 5 "${BOUND_LIMIT:-40}" $B --part bound-overhead --threads 4
  echo "== gpu-config"
  timeout -k 5 130 $B --part gpu-config --dtype bf16 --iters "$GPU_ITERS" --sgdw-lr "$SGDW_LR" \
    --workers 2 --threads 4
  $B --part gpu-config --dtype bf16 --iters "$GPU_ITERS" --sgdw-lr "$SGDW_LR" --report-only
  echo "== grid"
  timeout -k 5 "$GRID_LIMIT" $B --part grid --iters "$GRID_ITERS" --workers "$WORKERS" --threads 1
  $B --part grid --iters "$GRID_ITERS" --report-only
  echo "== done in $(( $(date +%s) - T0 )) s"
} 2>&1 | grep --line-buffered -v "resource_tracker" | tee "$OUT/log.txt"
for f in throughput$SUF.md bound_overhead$SUF.md gpu_config$SUF.md grid$SUF.md; do
  [ -f "$WORK/$f" ] && cp "$WORK/$f" "$OUT/"
done
tar -czf "$OUT/results.tar.gz" -C "$WORK" .
ls -l "$OUT"
