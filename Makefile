# The two commands of this project: `make repro` (main job) and `make test`.
SHELL := /bin/bash
VENV := .venv
export DVC_NO_ANALYTICS := 1
export PREFECT_HOME := $(CURDIR)/.prefect
export PREFECT_SERVER_ANALYTICS_ENABLED := false
export PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS := 180
export TF_CPP_MIN_LOG_LEVEL := 2

.PHONY: setup test repro bench clean prefect-server experiment

setup:
	@bash scripts/setup.sh

test: setup
	$(VENV)/bin/ruff check .
	$(VENV)/bin/python -m pytest -q tests $(PYTEST_ARGS)

repro: setup
	PATH="$(CURDIR)/$(VENV)/bin:$$PATH" dvc repro $(DVC_ARGS)

# The Prefect UI on http://127.0.0.1:4200 ; in another shell:
#   export PREFECT_API_URL=http://127.0.0.1:4200/api && make repro
prefect-server: setup
	$(VENV)/bin/prefect server start --host 127.0.0.1 --port 4200

# All runs in one Prefect flow run (train -> evaluate -> sample), outside DVC; the same
# folders as dvc.yaml's stages.
experiment: setup
	$(VENV)/bin/python -m scripts.experiment --params params.yaml --data-dir data/tfds \
	  --runs-dir runs --plots-dir plots --metrics-dir metrics --samples-dir samples

bench: setup
	$(VENV)/bin/python benchmarks/dsp.py --compare
	$(VENV)/bin/python benchmarks/spectral_loss.py
	$(VENV)/bin/python benchmarks/rnn.py
	$(VENV)/bin/python benchmarks/crepe.py
	$(VENV)/bin/python benchmarks/train_step.py

clean:
	rm -rf .pytest_cache .prefect
