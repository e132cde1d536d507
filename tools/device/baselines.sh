#!/usr/bin/env bash
# One device job: the comparison's baseline cells that need no GAN file, on the default run:
# the random_search row (its search-random stage, then five seeds side by side) and any
# ldam_drw seed not yet trained. Finished cells are skipped, so a rerun resumes.
#   bash tools/device/baselines.sh
set -euo pipefail
run=results/run-default
cells=results/compare
compare_cell() {
    python3 -c "import sys; from pathlib import Path; from ganpso.pipeline.compare import compare
compare(Path(sys.argv[1]), [sys.argv[2]], [int(sys.argv[3])], Path(sys.argv[4]))" "$@"
}
for seed in 0 1 2; do compare_cell "$run" ldam_drw "$seed" "$cells" & done
compare_cell "$run" random_search 0 "$cells"  # runs the search-random stage first
for seed in 1 2 3 4; do compare_cell "$run" random_search "$seed" "$cells" & done
wait
