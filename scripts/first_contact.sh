#!/usr/bin/env bash
# First contact with a GPU node, one command in about 10 minutes (docs/gpu.md): the node's facts and its
# package list (the input of `make node-wheels` next time), the install from the carried wheel folder and
# the hardened device check (scripts/gpu_check.sh: it ends inside its budget, whatever fails), whose smoke
# step trains `sweep=gpu_smoke train.device=cuda` end to end and is kept; every figure goes to one file.
#   scripts/first_contact.sh [FILE] [gpu_check options]     # default FILE: first_contact.txt
#   FIRST_CONTACT_MODE=cpu scripts/first_contact.sh f.txt --sizes=1 --pack=1   # the same steps on a CPU
# FIRST_CONTACT_BUDGET_S (default 540): seconds for all of it; the check gets what the install leaves.
# WHEELS and PYTHON as for scripts/gpu_check.sh.
set -uo pipefail
cd "$(dirname "$0")/.."
FILE=${1:-first_contact.txt}
shift || true
MODE=${FIRST_CONTACT_MODE:-cuda}
BUDGET=${FIRST_CONTACT_BUDGET_S:-540}
WORK=$(mktemp -d /tmp/first_contact.XXXXXX)
START=$(date +%s)
left() { echo $((BUDGET - ($(date +%s) - START) - 15)); }
: >"$FILE"
say() { tee -a "$FILE"; }

echo "first_contact date=$(date -u +%FT%TZ) mode=$MODE budget_s=$BUDGET commit=$(git rev-parse --short HEAD 2>/dev/null || echo none)" | say
if [ "$MODE" = cuda ]; then
  nvidia-smi --query-gpu=name,memory.total,driver_version,clocks.max.sm --format=csv,noheader 2>&1 |
    sed 's/^/gpu nvidia_smi="/; s/$/"/' | say
  CHECK_DEVICE=--device=cuda
else
  CHECK_DEVICE=--device=cpu
fi
NODE_PYTHON=${PYTHON:-python3}
echo "node python=\"$("$NODE_PYTHON" -c 'import sys; print(sys.executable, sys.version.split()[0])' 2>&1)\"" | say
echo "freeze begin: the node's \`python3 -m pip list --format=freeze\` (make node-wheels NODE_FREEZE=...)" | say
"$NODE_PYTHON" -m pip list --format=freeze 2>/dev/null | say
echo "freeze end" | say

T0=$(date +%s)
scripts/gpu_check.sh "$CHECK_DEVICE" "--budget-s=$(left)" "--smoke-dir=$WORK/smoke" "$@" 2>"$WORK/check.err" | say
echo "check rc=${PIPESTATUS[0]} wall_s=$(($(date +%s) - T0))" | say
tail -n 5 "$WORK/check.err" | sed 's/^/check stderr: /' | say

for f in results.csv report.md; do
  if [ -f "$WORK/smoke/$f" ]; then
    echo "smoke_file $f begin" | say
    cat "$WORK/smoke/$f" >>"$FILE"
    echo "smoke_file $f end" | say
  fi
done
MFU=${HARNESS_CACHE:-.cache/harness}/measured_mfu.json
[ -f "$MFU" ] && { echo "mfu_file $MFU begin"; cat "$MFU"; echo "mfu_file end"; } | say
echo "first_contact wall_s=$(($(date +%s) - START)) file=$FILE" | say
rm -rf "$WORK"
