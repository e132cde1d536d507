#!/usr/bin/env bash
# The last device call (carry the last .gpu/partNN, .gpu/fer2013.sha256 and, for jobs that need
# optuna or nevergrad, .whl): rebuild the data from the pieces, start CUDA MPS,
# run the jobs file's commands PARALLEL at a time until SECONDS_LEFT before the call's end, then
# pack every file the jobs wrote (checkpoints aside) into $OUT/results.tar.xz.
#   bash tools/device/run_jobs.sh JOBS_FILE [BUDGET_S=540] [PARALLEL=16]
# A jobs file holds one shell command per line, run from the repository root; '#' lines are
# comments. A command still running at the deadline is stopped (its resumable state stays).
set -uo pipefail
jobs_file=$1
budget=${2:-540}
parallel=${3:-16}
end=$(( $(date +%s) + budget - 45 ))  # the last 45 s pack the results
touch /tmp/ganpso-start
mkdir -p ../shared/data
mkdir -p /root/ganpso-data && cp .gpu/part* /root/ganpso-data/
cat /root/ganpso-data/part* | xz -d > ../shared/data/fer2013.zip
echo "$(cat .gpu/fer2013.sha256)  ../shared/data/fer2013.zip" | sha256sum -c - || exit 1
if ls .whl/*.whl > /dev/null 2>&1; then
    python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --target /tmp/site \
        .whl/*.whl || exit 1
fi
export PYTHONPATH=$PWD/src:$PWD/benchmarks:/tmp/site OMP_NUM_THREADS=1 PYTHONUNBUFFERED=1
export CUDA_MPS_PIPE_DIRECTORY=/root/mps-pipe CUDA_MPS_LOG_DIRECTORY=/root/mps-log
mkdir -p "$CUDA_MPS_PIPE_DIRECTORY" "$CUDA_MPS_LOG_DIRECTORY" "$OUT"
nvidia-cuda-mps-control -d && echo "CUDA MPS started"
export END=$end
grep -v '^\s*#' "$jobs_file" | grep . | nl -w1 -s' ' |
    xargs -d '\n' -P "$parallel" -n1 bash -c '
        index=${1%% *}; command=${1#* }; left=$(( END - $(date +%s) ))
        if [ "$left" -lt 60 ]; then echo "job $index: not started, $left s left"; exit 0; fi
        echo "job $index: start ($left s left): $command"
        timeout "$left" bash -c "$command" > "$OUT/job-$index.log" 2>&1
        echo "job $index: exit $? after $(( $(date +%s) - END + left )) s"
    ' job
echo quit | nvidia-cuda-mps-control
find . -newer /tmp/ganpso-start -type f ! -name '*.safetensors' ! -name '*.pt' \
    ! -path './.gpu/*' ! -path './.whl/*' ! -path '*/__pycache__/*' ! -path '../*' |
    tar -cJf "$OUT/results.tar.xz" -T -
tar -cJf "$OUT/logs.tar.xz" -C "$OUT" --exclude='*.tar.xz' . && rm -f "$OUT"/job-*.log
ls -la "$OUT"
