# One entry point for users, developers and CI. Everything installs itself into .venv.
PYTHON ?= python3.11
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
export SAM_CLI_TELEMETRY := 0
export PIP_DISABLE_PIP_VERSION_CHECK := 1

.PHONY: install demo test lint bench fault-matrix clean

install: $(STAMP)

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	@touch $(STAMP)

demo: install
	$(BIN)/p1-retrain demo events/data/sample.csv --train-eval events/data/train.csv events/data/eval.csv --switch --json

test: install
	$(BIN)/pytest -n 2 -q

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/sam validate --lint --template template.yaml
	$(BIN)/cfn-lint --template template.yaml --append-rules cfn_lint_serverless.rules
	$(BIN)/sam build --template template.yaml --build-dir .aws-sam/build

bench: install
	$(BIN)/python -m bench

fault-matrix: install
	$(BIN)/p1-retrain demo --count 100 --fault-rate 0.2 --json

# Deploy to AWS with the SAM CLI from .venv: `make deploy` (samconfig.toml's default environment),
# `make deploy ENV=dev|prod`, `make deploy PARAMS="NotificationEmail=you@example.com"` (PARAMS replaces
# the environment's parameter_overrides). `make delete ENV=...` deletes the stack (asks first).
ENV ?= default
SAM := PATH="$(CURDIR)/$(BIN):$$PATH" $(BIN)/sam
.PHONY: deploy delete

deploy: install
	$(SAM) build --config-env $(ENV)
	$(SAM) deploy --config-env $(ENV) $(if $(PARAMS),--parameter-overrides $(PARAMS))

delete: install
	$(SAM) delete --config-env $(ENV)

clean:
	rm -rf .aws-sam bench/out .pytest_cache
