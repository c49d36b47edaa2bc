#!/usr/bin/env bash
# Run (or resume) the cpu profile from a frozen worktree outside the work tree, on AVX2, logged.
# Usage: tools/cpu-run.sh [commit [run options]] (default main; e.g. main --from 4 --to 4). Detached:
#   setsid nohup tools/cpu-run.sh >/dev/null 2>&1 &
# Stages already finished under the same settings are reused, so a rerun resumes.
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
root=${XQG_RUN_ROOT:-$repo/../runs}
tree=$root/tree
commit=${1:-main}
shift || true
mkdir -p "$root"
exec 9>"$root/cpu-run.lock"
flock -n 9 || { echo "error: a cpu run is already going in $root (see $root/cpu-run.log)" >&2; exit 1; }
log=$root/cpu-run.log
{
  echo "== $(date -u +%FT%TZ) cpu run from $commit $*"
  if [ -d "$tree" ]; then git -C "$tree" checkout -q --detach "$commit"
  else git -C "$repo" worktree add -q --detach "$tree" "$commit"; fi
  git -C "$tree" log -1 --oneline
  cd "$tree"
  bash tools/setup.sh
  export XQG_DATA_DIR=${XQG_DATA_DIR:-$repo/../shared/data}
  export ONEDNN_MAX_CPU_ISA=AVX2 ATEN_CPU_CAPABILITY=avx2 MKL_ENABLE_INSTRUCTIONS=AVX2
  .venv/bin/python -m xqglib run --profile cpu --run-dir "$root/cpu" "$@"
  echo "== $(date -u +%FT%TZ) cpu run finished"
} >>"$log" 2>&1
