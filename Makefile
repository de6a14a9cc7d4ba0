# The two commands of the README. Both set up .venv first (skipped when it is up to date).
.PHONY: setup run test test-fast lint

setup:
	bash scripts/setup.sh

# The main job: the whole pipeline on the embedded default models and data -> reports/tiny/
run: setup
	.venv/bin/compeffdist run params/tiny.yaml

# The test suite: unit tests, a real OpenAI-compatible server, and the nine real notebooks executed
# end to end on tests/params/ci.yaml (about 8 minutes on 2 CPU cores after setup).
test: setup
	.venv/bin/ruff check .
	.venv/bin/python -m pytest -q -p no:cacheprovider --durations=10

# While developing: everything except the end-to-end notebook runs (marker `pipeline`).
test-fast: setup
	.venv/bin/python -m pytest -q -p no:cacheprovider -m "not pipeline"

lint: setup
	.venv/bin/ruff check .
	.venv/bin/ruff format --check .
