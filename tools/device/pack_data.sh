#!/usr/bin/env bash
# Here, before the first device call: FER2013 as PARTS xz pieces in .gpu/ (ignored by git), so
# that the working tree and one piece (with .whl/ in the last call) fit the device tool's 64 MiB
# per call. Also downloads, into .whl/, the wheels of the optional packages the device image
# lacks (optuna, nevergrad).
#   PARTS=3 bash tools/device/pack_data.sh [../shared/data/fer2013.zip]
set -euo pipefail
source_zip=${1:-../shared/data/fer2013.zip}
for folder in .gpu .whl; do
    grep -qx "/$folder/" .git/info/exclude 2>/dev/null || echo "/$folder/" >> .git/info/exclude
done
mkdir -p .gpu .whl
sha256sum "$source_zip" | cut -d' ' -f1 > .gpu/fer2013.sha256
xz -T2 -6 -c "$source_zip" > .gpu/data.xz
rm -f .gpu/part*
split -n "${PARTS:-3}" -d -a 2 .gpu/data.xz .gpu/part
rm .gpu/data.xz
# the search comparison's TPE (optuna) and CMA-ES (nevergrad) with what the image lacks of theirs
python3 -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 \
    --implementation cp --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 \
    --platform manylinux2014_x86_64 -d .whl \
    optuna alembic sqlalchemy colorlog mako greenlet nevergrad cma bayesian-optimization
tree=$( { git ls-files -z; git ls-files -z --others --exclude-standard; } | xargs -0 du -cb |
    awk '$2 == "total" {sum += $1} END {print sum}')
for part in .gpu/part*; do
    extra=$(du -cb "$part" | tail -1 | cut -f1)
    [ "$part" = "$(ls .gpu/part* | tail -1)" ] && extra=$(du -cb "$part" .whl .gpu/fer2013.sha256 | tail -1 | cut -f1)
    awk -v t="$tree" -v e="$extra" -v p="$part" \
        'BEGIN {printf "call with %s: %.1f MiB of 64\n", p, (t + e) / 1048576}'
done
