#!/usr/bin/env bash
# Issue 10 on a GPU machine (one H200, 16 cores): the clustering-table cells too slow for a 2-core CPU.
#
#   1. Fashion-MNIST-70k scattering features (structlearn.data.scattering on the GPU, then the same
#      uncentred PCA-500 + L2 rows as on the CPU) and the pixel PCA-500 features;
#   2. bench_cluster.py table cells, one process per (dataset, method) group, all at once: baselines on
#      the CPU (one thread each, as in the committed table), SENet / PRO-DSC / NeuNcut with --device cuda;
#   3. the per-seed run JSONs (tar.gz) and the scattering features (float16, byte planes, zlib) under $OUT,
#      so the CPU machine can merge the cells into benchmarks/results/cluster/ (--report-only) and run
#      more CPU cells on the same features.
#
# Needs: python3 with torch, numpy, scipy, scikit-learn, tqdm; pyamg as a wheel in .whl/ (optional);
# the four Fashion-MNIST idx .gz files in $STRUCTLEARN_FASHION_MNIST (default .ref/data/fashion-mnist).
# Usage (repository root): OUT=/some/folder [PHASE=2|3] bash benchmarks/gpu_issue10.sh [time limit of step 2, s]
set -u
cd "$(dirname "$0")/.."
OUT=${OUT:-/tmp/gpu_issue10_out}
LIMIT=${1:-300}
mkdir -p "$OUT"
if ls .whl/*.whl >/dev/null 2>&1; then
    python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl \
        && export PYTHONPATH=/tmp/site
fi
export PYTHONPATH=${PYTHONPATH:+$PYTHONPATH:}$PWD/src PYTHONUNBUFFERED=1
export STRUCTLEARN_FASHION_MNIST=${STRUCTLEARN_FASHION_MNIST:-$PWD/.ref/data/fashion-mnist}
export STRUCTLEARN_CACHE=${STRUCTLEARN_CACHE:-/tmp/structlearn-cache}
RUNS=${RUNS:-/tmp/gpu_issue10_runs}
DEV=${DEV:-cuda}
LOG=$OUT/gpu_issue10.log
mkdir -p "$RUNS"
{
    date -u
    nvidia-smi --query-gpu=name,memory.total --format=csv 2>/dev/null || true
    OMP_NUM_THREADS=16 python3 - "$DEV" <<'EOF'
import sys, time
sys.path.insert(0, "benchmarks")
import bench_cluster as b
for name in ("fmnist-scat", "fmnist-pixel"):
    t0 = time.perf_counter()
    X, y, k = b.load_table_dataset(name, 0, sys.argv[1])
    print(f"{name}: {X.shape}, {time.perf_counter() - t0:.1f} s", flush=True)
EOF
    B=(python3 benchmarks/bench_cluster.py --out "$RUNS" --device "$DEV" --cap-min 6)
    pids=()
    launch() { "${B[@]}" "$@" > "$RUNS/$(echo "$*" | tr -c 'a-zA-Z0-9-' _ | cut -c1-80).log" 2>&1 & pids+=($!); }
    if [ "${PHASE:-1}" = 1 ]; then
        # The slow cells one process per seed; the rest one process per (dataset, method).
        launch --datasets fmnist-scat --methods KMeansClustering "sklearn KMeans"
        launch --datasets fmnist-scat --methods EnSC
        launch --datasets fmnist-scat --methods SSC-OMP
        for s in 0 1 2; do
            for m in SpectralKNN "sklearn SpectralClustering" SENet PRO-DSC NeuNcut; do
                launch --datasets fmnist-scat --methods "$m" --seeds $s
            done
        done
        for m in SENet PRO-DSC NeuNcut; do
            launch --datasets uos10-50k --methods "$m"
            launch --datasets fmnist-pixel --methods "$m"
        done
    elif [ "${PHASE:-1}" = 3 ]; then
        # Phase 3: only the flagship Fashion-MNIST scattering cells that never finished (PRO-DSC, NeuNcut),
        # one process per seed, one BLAS thread each; BENCH_TRACE_EVERY makes each worker print its
        # Python stack periodically, so a cell cut short still shows where its time went.
        # SEEDS, METHODS and THREADS (per process) narrow it to what a short window can finish.
        TH=${THREADS:-1}
        export OMP_NUM_THREADS=$TH OPENBLAS_NUM_THREADS=$TH MKL_NUM_THREADS=$TH BENCH_TRACE_EVERY=${BENCH_TRACE_EVERY:-45}
        for s in ${SEEDS:-0 1 2}; do
            for m in ${METHODS:-PRO-DSC NeuNcut}; do
                launch --datasets fmnist-scat --methods "$m" --seeds $s
            done
        done
    else
        # Phase 2 (after the phase-1 fixes): the flagship Fashion-MNIST scattering cells, a process per
        # seed with two BLAS threads each (NeuNcut's 70k kNN graph), and the first 50k seeds.
        export OMP_NUM_THREADS=2 OPENBLAS_NUM_THREADS=2 MKL_NUM_THREADS=2
        for s in 0 1 2; do
            for m in SENet PRO-DSC NeuNcut; do
                launch --datasets fmnist-scat --methods "$m" --seeds $s
            done
        done
        launch --datasets uos10-50k --methods PRO-DSC --seeds 0
        launch --datasets uos10-50k --methods NeuNcut --seeds 0
    fi
    # Step 2 ends at LIMIT seconds whatever is running: what finished is kept (one JSON per seed).
    # pkill first: it also reaches the table workers (grandchildren); killing the launchers first let
    # this script's `wait` return and kill this subshell before its pkill, orphaning the workers.
    ( sleep "$LIMIT"; pkill -f bench_cluster.py; kill "${pids[@]}" 2>/dev/null ) &
    killer=$!
    wait "${pids[@]}" 2>/dev/null
    kill "$killer" 2>/dev/null
    date -u
    tail -n 3 "$RUNS"/*.log
} > "$LOG" 2>&1
tar czf "$OUT/runs.tgz" -C "$RUNS" -- $(cd "$RUNS" && ls -d runs ./*.log 2>/dev/null)
# The scattering features, float16 in two zlib-compressed byte planes (≈ 60 MB for 70k × 500), in
# chunks under 16 MB: `python benchmarks/bench_cluster.py --import-features DIR` restores them.
[ "${PHASE:-1}" = 1 ] && python3 - "$STRUCTLEARN_CACHE" "$OUT" <<'EOF' >> "$LOG" 2>&1
import sys, zlib
from pathlib import Path
import numpy as np
z = np.load(Path(sys.argv[1]) / "bench_cluster" / "fmnist-scat.npz")
X, y = z["X"].astype(np.float16), z["y"]
planes = X.view(np.uint8).reshape(-1, 2)  # little-endian: [:, 1] = sign, exponent, top mantissa bits
hi = zlib.compress(np.ascontiguousarray(planes[:, 1]).tobytes(), 9)
blob = hi + zlib.compress(np.ascontiguousarray(planes[:, 0]).tobytes(), 6)
np.savez(Path(sys.argv[2]) / "fmnist-scat-meta.npz", y=y, shape=np.array(X.shape), hi_len=len(hi))
step = 15 * 2**20
for i in range(0, len(blob), step):
    (Path(sys.argv[2]) / f"fmnist-scat-f16.part{i // step}").write_bytes(blob[i : i + step])
print(f"features: {X.shape} float16, {len(blob) / 1e6:.1f} MB in {(len(blob) + step - 1) // step} parts")
EOF
ls -la "$OUT"
