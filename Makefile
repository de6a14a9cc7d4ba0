# The two commands of the README. Both set up .venv first (skipped when it is up to date).
.PHONY: setup run test test-pipeline lint

setup:
	bash scripts/setup.sh

# The main job: the whole pipeline on the embedded default models and data -> reports/tiny/
run: setup
	.venv/bin/compeffdist run params/tiny.yaml

# The test suite (unit tests, a real OpenAI-compatible server, the runner on small notebooks).
# The runs of the real notebooks on tests/params/ci.yaml are `make test-pipeline` (see the README).
test: setup
	.venv/bin/ruff check compeffdist_utils tests benchmarks
	.venv/bin/python -m pytest -q -p no:cacheprovider -m "not pipeline"

test-pipeline: setup
	.venv/bin/python -m pytest -q -p no:cacheprovider -m pipeline

lint: setup
	.venv/bin/ruff check compeffdist_utils tests benchmarks
	.venv/bin/ruff format --check compeffdist_utils tests benchmarks
