#!/usr/bin/env bash
# Train a candidate for the shipped model on one GPU: from scratch, on MNIST
# train plus its canvas-style and styles renderings, calibrated, measured on
# MNIST test, the canvas-style set and the styles set.
#
#   bench/train_styles_gpu.sh prepare   # with internet: the site's Python packages as
#                                       # wheels (var/gpu-wheels) and MNIST (var/mnist)
#   bench/train_styles_gpu.sh check     # here, on the CPU: the same run on 300 digits,
#                                       # one epoch, written to a scratch folder
#   bench/train_styles_gpu.sh train     # on the GPU machine (carry var/gpu-wheels and
#                                       # var/mnist): the real run
#
# The GPU machine has its own Python 3.12 with a CUDA build of PyTorch, numpy,
# scikit-image, scipy, Pillow and tqdm, and no Django: `train` installs the
# carried wheels into a scratch folder put first on PYTHONPATH. Everything the
# run writes besides the model (database, caches, versions) goes to a scratch
# folder; the model and its manifest are written to recognizer/weights/ and
# copied, with the log, to $OUT (or bench/results/gpu-run).
#
# Settings (environment): SEED (1), EPOCHS (40: the shipped model's), BATCH (256), NAME
# (digitcnn-v2-styles-seed$SEED), CANVAS_TRAIN (58000: every MNIST train digit
# outside the calibration hold-out), STYLES_TRAIN (22000: 2,000 per style),
# WORKERS (every core), PYTHON (chosen below).
set -euo pipefail
cd "$(dirname "$0")/.."

mode=${1:-}
SEED=${SEED:-1}
EPOCHS=${EPOCHS:-40}
BATCH=${BATCH:-256}
NAME=${NAME:-digitcnn-v2-styles-seed$SEED}
CANVAS_TRAIN=${CANVAS_TRAIN:-58000}
STYLES_TRAIN=${STYLES_TRAIN:-22000}
WHEELS=var/gpu-wheels
MNIST=var/mnist
# The site's own packages the trainer needs on a machine that has PyTorch but not Django.
SITE_PACKAGES="Django==5.2.19 channels==4.3.2 daphne==4.2.3 dj-database-url==3.1.2 whitenoise==6.12.0"
MNIST_FILES="train-images-idx3-ubyte.gz train-labels-idx1-ubyte.gz t10k-images-idx3-ubyte.gz t10k-labels-idx1-ubyte.gz"

say() { printf '[%s] %s\n' "$(date -u +%H:%M:%S)" "$*"; }

has_mnist() {
    for f in $MNIST_FILES; do [ -s "$MNIST/$f" ] || return 1; done
}

case "$mode" in
prepare)
    pip=.venv/bin/pip
    mkdir -p "$WHEELS" "$MNIST"
    # shellcheck disable=SC2086
    "$pip" download --only-binary=:all: --python-version 3.12 --implementation cp \
        --platform manylinux_2_28_x86_64 --platform manylinux2014_x86_64 --platform any \
        -d "$WHEELS" $SITE_PACKAGES
    if ! has_mnist; then
        source_dir=${MNIST_SOURCE:-../shared/data/mnist}
        for f in $MNIST_FILES; do cp "$source_dir/$f" "$MNIST/"; done
    fi
    du -sh "$WHEELS" "$MNIST"
    say "ready: carry $WHEELS and $MNIST to the GPU machine and run '$0 train'"
    exit 0
    ;;
check | train) ;;
*)
    echo "usage: $0 prepare|check|train" >&2
    exit 2
    ;;
esac

has_mnist || { echo "MNIST is not in $MNIST: run '$0 prepare' first" >&2; exit 1; }
scratch=$(mktemp -d "${TMPDIR:-/tmp}/train-styles.XXXXXX")
out=${OUT:-bench/results/gpu-run}
[ "$mode" = check ] && out=$scratch/out
mkdir -p "$out"

# -- Python: the project's virtualenv if it has Django and torch (with CUDA, to train),
# else python3 (on the GPU machine, the one with a CUDA build of PyTorch) + the wheels --
if [ -z "${PYTHON:-}" ]; then
    need_cuda=$([ "$mode" = train ] && echo 1 || echo 0)
    if .venv/bin/python -c "import sys, django, torch
sys.exit(0 if torch.cuda.is_available() or not $need_cuda else 1)" 2>/dev/null; then
        PYTHON=.venv/bin/python
    else
        PYTHON=python3
        [ -d "$WHEELS" ] || { echo "no Django here and no $WHEELS: run '$0 prepare'" >&2; exit 1; }
        # shellcheck disable=SC2086
        "$PYTHON" -m pip install --quiet --no-index --find-links "$WHEELS" \
            --target "$scratch/site" $SITE_PACKAGES
        export PYTHONPATH="$scratch/site${PYTHONPATH:+:$PYTHONPATH}"
    fi
fi
export DIGITSITE_VAR_DIR="$scratch/var"
export RECOGNIZER_MODEL_DIR="$scratch/models"
export DATABASE_URL="sqlite:///$scratch/var/db.sqlite3"
export SECRET_KEY="${SECRET_KEY:-training-run-only}"
export PYTHONUNBUFFERED=1
# The in-memory channel layer: the trainer needs no Redis.
unset REDIS_URL
# Deterministic cuBLAS, so that a seed gives the same weights on the same machine.
export CUBLAS_WORKSPACE_CONFIG=:4096:8
mkdir -p "$DIGITSITE_VAR_DIR"

"$PYTHON" - <<'EOF'
import django, numpy, skimage, torch
print(f"python ok: torch {torch.__version__}, cuda {torch.cuda.is_available()}, "
      f"numpy {numpy.__version__}, scikit-image {skimage.__version__}, django {django.__version__}")
EOF

if [ "$mode" = train ]; then
    "$PYTHON" -c "import torch, sys; sys.exit(0 if torch.cuda.is_available() else 'torch sees no GPU')"
    nvidia-smi --query-gpu=name,memory.total --format=csv,noheader || true
    device=cuda
    output=recognizer/weights/$NAME.pt
    extra=()
else
    device=cpu
    output=$scratch/model/$NAME.pt
    EPOCHS=1
    # 300 MNIST digits and 300 held out; the renderings are capped by --limit.
    extra=(--limit 300 --threads 1 --calibration-holdout 300)
fi

say "migrating a scratch database"
"$PYTHON" manage.py migrate --noinput >"$scratch/migrate.log"

command=("$PYTHON" manage.py finetune --from-scratch --seed "$SEED" --epochs "$EPOCHS"
         --batch-size "$BATCH" --device "$device" --canvas-train "$CANVAS_TRAIN"
         --styles-train "$STYLES_TRAIN" --data-dir "$MNIST" --output "$output"
         ${WORKERS:+--workers "$WORKERS"} "${extra[@]}")
say "running: ${command[*]}"
started=$(date +%s)
"${command[@]}" 2>&1 | tee "$out/finetune.log"
say "finetune took $(( $(date +%s) - started )) s"

cp "$output" "$(dirname "$output")/manifest.json" "$out/"
"$PYTHON" - "$out/manifest.json" <<'EOF' | tee "$out/summary.txt"
import json, sys
m = json.load(open(sys.argv[1]))
metrics = m["metrics"]
print(f"{m['file']}: {m['size_bytes']} bytes, {m['duration_seconds']} s, torch {m['torch']}")
print(f"MNIST test {metrics['accuracy']:.4%}, canvas-style {metrics['canvas_accuracy']:.4%}, "
      f"styles {metrics['styles_accuracy']:.4%}")
for name, row in metrics["styles"]["per_style"].items():
    print(f"  {name}: {row['accuracy']:.2%} (read as {row['read_as']})")
cal = metrics["calibration"]
print(f"temperature {cal['temperature']}")
for name, row in cal["after"].items():
    c = row["calibrated"]
    wrong = "-" if c["wrong_reaching"] is None else f"{c['wrong_reaching']:.2%}"
    print(f"  {name}: right and >= 0.9 {c['correct_reaching']:.2%}, wrong and >= 0.9 "
          f"{wrong}, ECE {c['ece']:.4f}")
for epoch in metrics["curves"]:
    print(f"  epoch {epoch['epoch']}: {epoch['seconds']} s, test {epoch.get('eval_accuracy')}")
EOF
say "files in $out: $(ls "$out" | tr '\n' ' ')"
