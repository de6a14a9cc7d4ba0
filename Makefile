# The two commands of the README. Both set up .venv first (skipped when it is up to date).
.PHONY: setup run test test-fast lint vllm-env lab study-docs

setup:
	bash scripts/setup.sh

# vLLM's CPU build in its own .venv-vllm (its pins conflict with the kit's), for the real vLLM server
# test (tests/teacher/test_vllm_server.py). First time ~2 minutes; skipped when up to date.
vllm-env:
	bash scripts/setup_vllm.sh

# The main job: the whole pipeline on the embedded default models and data -> reports/tiny/
run: setup
	.venv/bin/compeffdist run params/tiny.yaml

# JupyterLab on the project with the kit's kernel, on 127.0.0.1: prints the port and a token made for this
# start (`make lab PORT=8899` to choose the port). Ctrl-C stops it.
lab: setup
	.venv/bin/python -m compeffdist_utils.run.lab $(if $(PORT),--port $(PORT))

# The study for readers, from a (finished or partly finished) study run folder -> docs/study/
# (results.csv, efficiency.csv, the figures, report.html, README.md): `make study-docs RUN=reports/study`.
RUN ?= reports/study
study-docs: setup
	.venv/bin/compeffdist publish-study $(RUN) --out docs/study

# The test suite: unit tests, a real OpenAI-compatible server, and the nine real notebooks executed
# end to end on tests/params/ci.yaml (about 10 minutes on 2 CPU cores after setup), plus a real vLLM server and a two-process training.
test: setup vllm-env
	.venv/bin/ruff check .
	COMPEFFDIST_REQUIRE_VLLM=1 .venv/bin/python -m pytest -q -p no:cacheprovider --durations=10

# While developing: everything except the end-to-end notebook runs (marker `pipeline`), the vLLM server
# and the two-process training (markers `vllm`, `ddp`).
test-fast: setup
	.venv/bin/python -m pytest -q -p no:cacheprovider -m "not pipeline and not vllm and not ddp"

lint: setup
	.venv/bin/ruff check .
	.venv/bin/ruff format --check .
