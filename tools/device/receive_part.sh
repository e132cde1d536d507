#!/usr/bin/env bash
# Device calls before the last (carry one .gpu/partNN each): keep that piece of the data on the
# machine, which stays warm for only 30 s after a call: issue the next call at once.
set -euo pipefail
mkdir -p /root/ganpso-data
cp .gpu/part* /root/ganpso-data/
ls -la /root/ganpso-data
nvidia-smi -L
python3 -c "import torch; print('torch', torch.__version__, torch.cuda.get_device_name())"
