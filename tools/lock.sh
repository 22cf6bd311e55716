#!/bin/sh
# `make lock`: rewrite requirements.lock (runtime: the image, `make run`) and requirements-dev.lock (tests,
# tools: `make test`, CI) from requirements.txt and requirements-dev.txt, every package pinned with the
# sha256 of each of its files, with pip-tools (pinned in requirements-dev.txt). The dev lock is resolved
# under the runtime lock as a constraint, so both install the same runtime versions.
#
# torch: the locks pin the CPU build (torch==X+cpu). pip sees it in a local wheelhouse (pip's find-links)
# and, where it answers, on the PyTorch CPU index ($TORCH_INDEX_URL), which then adds the hashes of all
# its CPU wheels of a new version. Hashes already in a lock are kept for an unchanged pin, so a machine
# that cannot reach the index keeps the CPU index's hashes a previous run recorded (docs/deploy.md).
set -eu
cd "$(dirname "$0")/.."

python="${PYTHON:-.venv/bin/python}"
torch_index="${TORCH_INDEX_URL-https://download.pytorch.org/whl/cpu}"

"$python" -m pip install --quiet "$(grep -i '^pip-tools==' requirements-dev.txt)"

if [ -n "$torch_index" ] && "$python" -c 'import sys, urllib.request; urllib.request.urlopen(sys.argv[1], timeout=10)' \
    "$torch_index/torch/" 2>/dev/null; then
    export PIP_EXTRA_INDEX_URL="$torch_index${PIP_EXTRA_INDEX_URL:+ $PIP_EXTRA_INDEX_URL}"
else
    echo "make lock: $torch_index cannot be reached; torch comes from pip's find-links and keeps the hashes the locks have" >&2
fi

# LOCK_ARGS: extra pip-compile options, e.g. "--upgrade-package urllib3" (word-split on purpose).
export CUSTOM_COMPILE_COMMAND="make lock"  # what the locks' header tells a reader to run
compile() {
    # shellcheck disable=SC2086
    "$python" -m piptools compile --quiet --generate-hashes --allow-unsafe --strip-extras \
        --no-emit-index-url --no-emit-find-links --no-emit-trusted-host ${LOCK_ARGS:-} "$@"
}
compile --output-file requirements.lock requirements.txt
compile --constraint requirements.lock --output-file requirements-dev.lock requirements-dev.txt
echo "make lock: wrote requirements.lock and requirements-dev.lock"
