# The two commands of the README. Both set up .venv first (skipped when it is up to date).
.PHONY: setup run test test-pipeline lint

setup:
	bash scripts/setup.sh

# The main job: the whole pipeline on the embedded default models and data -> reports/tiny/
run: setup
	.venv/bin/compeffdist run params/tiny.yaml

# The test suite. Notebooks 00-01 run headless in it (through a real OpenAI-compatible server);
# the full 00-08 run on tests/params/ci.yaml is `make test-pipeline` (see the README).
test: setup
	.venv/bin/ruff check compeffdist_utils tests benchmarks
	.venv/bin/python -m pytest -q -p no:cacheprovider -m "not pipeline"

test-pipeline: setup
	.venv/bin/python -m pytest -q -p no:cacheprovider -m pipeline

lint: setup
	.venv/bin/ruff check compeffdist_utils tests benchmarks
	.venv/bin/ruff format --check compeffdist_utils tests benchmarks
