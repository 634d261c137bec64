# The README's two commands: `make run` (set up, then the main job) and `make test`.
.PHONY: setup setup-dev run test mutation

.venv/.setup-stamp: pyproject.toml scripts/setup.sh
	bash scripts/setup.sh
	touch $@

.venv/.setup-dev-stamp: pyproject.toml scripts/setup.sh
	bash scripts/setup.sh dev
	touch .venv/.setup-stamp $@

setup: .venv/.setup-stamp
setup-dev: .venv/.setup-dev-stamp

run: setup
	.venv/bin/rlpost recipe run cls-rl

test: setup-dev
	.venv/bin/python -m pytest -q

# Mutation testing of the core modules (slow, not in CI): writes docs/mutation.md
mutation:
	bash scripts/setup.sh mutation
	.venv/bin/python scripts/mutation.py
