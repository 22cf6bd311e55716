#!/bin/sh
# Install a hash-locked requirements file (requirements.lock / requirements-dev.lock, written by `make lock`)
# into the Python given as $PYTHON (default: python), with a CPU-only torch:
#   PYTHON=.venv/bin/python tools/install-locked.sh requirements.lock
# Used by the Makefile's venv targets and the Dockerfile, so both install exactly the same files.
#
# torch first, on its own: the lock pins torch==X+cpu, a build that only the PyTorch CPU index
# ($TORCH_INDEX_URL) or a local wheelhouse (pip's find-links) carries. A wheelhouse that has it is used
# without asking the index; otherwise the CPU index is added for this one package, never for the others
# (their hashes are PyPI's). Then everything else, hash-checked, and a check that no CUDA wheel came in.
set -eu

lock="${1:?usage: tools/install-locked.sh LOCKFILE}"
python="${PYTHON:-python}"
torch_index="${TORCH_INDEX_URL-https://download.pytorch.org/whl/cpu}"

torch_lock="$(mktemp)"
trap 'rm -f "$torch_lock"' EXIT
# The torch entry: its pin line and the "--hash" lines continued from it with a trailing backslash.
awk '/^torch==/ { found = 1 } found { print; if ($0 !~ /\\$/) exit }' "$lock" >"$torch_lock"

if [ -s "$torch_lock" ]; then
    "$python" -m pip install --quiet --require-hashes --no-deps --no-index -r "$torch_lock" 2>/dev/null ||
        PIP_EXTRA_INDEX_URL="$torch_index" "$python" -m pip install --quiet --require-hashes --no-deps -r "$torch_lock"
fi
"$python" -m pip install --quiet --require-hashes -r "$lock"

"$python" - <<'EOF'
import importlib.metadata as metadata
import sys

cuda = sorted(
    {d.metadata["Name"] for d in metadata.distributions() if d.metadata["Name"].lower().startswith(("nvidia", "triton"))}
)
sys.exit(f"CUDA packages installed (the lock must pin the CPU-only torch): {cuda}" if cuda else 0)
EOF
