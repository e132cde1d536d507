#!/usr/bin/env bash
# One device job: the wide search (configs/search-wide.yaml: 16 particles x ITERATIONS at the
# quarter rung, then its best 4 and the base recipe trained in full), then GAN-PSO's five seeds
# of the comparison from it, side by side, and the ensemble of the rescored trainings.
# Resumable: a rerun (same or next device call) continues the search and skips finished cells.
#   ITERATIONS=6 bash tools/device/wide_then_compare.sh
set -euo pipefail
run=${RUN:-runs/wide}
mkdir -p "$run"
[ -f "$run/config.yaml" ] || cp results/run-default/config.yaml "$run/"
python3 -m ganpso search --config configs/search-wide.yaml --train-config configs/default.yaml \
    --trunk src/ganpso/inference/weights/fer2013-vgg_small.safetensors \
    --generator results/gan/generator.safetensors --device cuda --out "$run/search" \
    --set iterations="${ITERATIONS:-8}"
compare_cell() {
    python3 -c "import sys; from pathlib import Path; from ganpso.pipeline.compare import compare
compare(Path(sys.argv[1]), [sys.argv[2]], [int(sys.argv[3])], Path(sys.argv[1]) / 'compare')" "$@"
}
for seed in 0 1 2 3 4; do compare_cell "$run" ganpso "$seed" & done
compare_cell "$run" ganpso_swarm_ensemble 0 &
wait
