# Shared by scripts/serve and scripts/test: a virtual environment in .venv with the project installed.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
source scripts/_install.sh
if [ ! -x .venv/bin/python ]; then
    "$PYTHON" -m venv .venv
    announce "skao-staging and its dependencies into .venv" "the service${1:+ with its test tools}" "1 to 3 minutes the first time"
fi
.venv/bin/python -m pip install --quiet --upgrade pip
.venv/bin/python -m pip install --quiet -e ".${1:-}"
