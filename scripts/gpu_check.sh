#!/usr/bin/env bash
# The device check (docs/gpu.md): key=value lines from scripts/gpu_check.py, at most 8 minutes on one GPU.
#   scripts/gpu_check.sh                  # cuda when present, else the small CPU version
#   scripts/gpu_check.sh --device=cpu     # any scripts/gpu_check.py option passes through
# Python: $PYTHON when set, else .venv when that has what the check needs, else python3. When it lacks them and
# the wheel folder $WHEELS (default wheelhouse; `make wheels` builds it) exists, this installs through the
# offline path first: make install-offline into .venv layered on $PYTHON (its torch and packages kept),
# or, if the folder cannot satisfy the whole harness, the check's own needs alone.
set -euo pipefail
cd "$(dirname "$0")/.."
WHEELS=${WHEELS:-wheelhouse}
NEEDS='import torch, transformers, hydra, omegaconf, scipy, matplotlib, filelock'
if [ -z "${PYTHON:-}" ] && [ -x .venv/bin/python ] && .venv/bin/python -c "$NEEDS" 2>/dev/null; then
  PYTHON=.venv/bin/python
elif PYTHON=${PYTHON:-python3} && ! "$PYTHON" -c "$NEEDS" 2>/dev/null; then
  if [ ! -d "$WHEELS" ]; then
    echo "install error=\"$PYTHON lacks the check's packages ($NEEDS) and there is no wheel folder $WHEELS\""
    exit 1
  fi
  echo "install from=$WHEELS python=$PYTHON"
  T0=$(date +%s)
  if ! make install-offline PYTHON="$PYTHON" WHEELS="$WHEELS" VENV_FLAGS=--system-site-packages EXTRAS= >&2; then
    echo "install note=\"the wheel folder cannot install the whole harness; installing the check's needs alone\""
    if [ ! -x .venv/bin/python ]; then
      "$PYTHON" -m venv --system-site-packages .venv
      "$PYTHON" scripts/install.py inherit .venv
    fi
    .venv/bin/python -m pip install -q --no-index --find-links "$WHEELS" hydra-core filelock scipy matplotlib >&2
  fi
  PYTHON=.venv/bin/python
  echo "install wall_s=$(($(date +%s) - T0)) python=$PYTHON"
fi
exec "$PYTHON" scripts/gpu_check.py "$@"
