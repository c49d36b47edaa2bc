#!/usr/bin/env bash
# Build .venv from environment.yml's pip list, install xqglib into it (editable) and register its
# Jupyter kernel for papermill. Idempotent: does nothing when the stamp matches the environment
# files; otherwise (re)installs what changed. Offline machines need only a package registry.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${XQG_BOOTSTRAP_PYTHON:-python3.11}
stamp=.venv/.xqg-setup
want=$(cat environment.yml pyproject.toml tools/setup.sh | sha256sum | cut -c1-16)
if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then
  exit 0
fi
command -v "$PY" >/dev/null || { echo "error: $PY not found; install Python 3.11 or set XQG_BOOTSTRAP_PYTHON" >&2; exit 2; }
echo "setting up .venv from environment.yml (first time: a few minutes)" >&2
[ -x .venv/bin/python ] || "$PY" -m venv .venv
reqs=$(mktemp) nodeps=$(mktemp)
trap 'rm -f "$reqs" "$nodeps"' EXIT
# the pip: list of environment.yml, split into normal and --no-deps requirements
awk '/^ *- pip:/ {inpip=1; next} inpip && /^ *- / {sub(/^ *- /, ""); print}' environment.yml \
  | while IFS= read -r line; do
      req=${line%%#*}; req=${req%% *}
      case "$line" in *no-deps*) echo "$req" >>"$nodeps" ;; *) echo "$req" >>"$reqs" ;; esac
    done
.venv/bin/python -m pip install -q --disable-pip-version-check -r "$reqs"
.venv/bin/python -m pip install -q --disable-pip-version-check --no-deps -r "$nodeps"
.venv/bin/python -m pip install -q --disable-pip-version-check --no-deps --no-build-isolation -e .
.venv/bin/python -m ipykernel install --sys-prefix --name xqg --display-name "Python (xqg)" >/dev/null
echo "$want" >"$stamp"
echo "environment ready: .venv" >&2
