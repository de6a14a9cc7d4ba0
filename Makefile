# The two commands of the README. Both set up .venv first (skipped when it is up to date).
.PHONY: setup run test lint

setup:
	bash scripts/setup.sh

# The main job: the whole pipeline on the embedded default models and data -> reports/tiny/
run: setup
	.venv/bin/compeffdist run params/tiny.yaml

# The test suite, notebooks included (executed on tests/params/ci.yaml).
test: setup
	.venv/bin/ruff check compeffdist_utils tests benchmarks
	.venv/bin/python -m pytest -q -p no:cacheprovider

lint: setup
	.venv/bin/ruff check compeffdist_utils tests benchmarks
	.venv/bin/ruff format --check compeffdist_utils tests benchmarks
