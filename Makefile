# One entry point for users, developers and CI. Everything installs itself into .venv.
# The project runs on Python 3.13 (the functions' Lambda runtime). PYTHON is found automatically: a working
# python3.13 on PATH, else pyenv's, asdf's or uv's install; `make PYTHON=/path/to/python3.13` overrides it.
PYTHON_VERSION := 3.13
IS_PYTHON_VERSION := import sys; sys.exit(sys.version_info[:2] != tuple(map(int, "$(PYTHON_VERSION)".split("."))))
ifeq ($(origin PYTHON),undefined)
PYTHON := $(shell for p in python$(PYTHON_VERSION) \
    "$$(pyenv root 2>/dev/null || echo "$${PYENV_ROOT:-$$HOME/.pyenv}")"/versions/$(PYTHON_VERSION)*/bin/python$(PYTHON_VERSION) \
    "$${ASDF_DATA_DIR:-$$HOME/.asdf}"/installs/python/$(PYTHON_VERSION)*/bin/python$(PYTHON_VERSION) \
    "$${UV_PYTHON_INSTALL_DIR:-$$HOME/.local/share/uv/python}"/cpython-$(PYTHON_VERSION)*/bin/python$(PYTHON_VERSION); do \
  if "$$p" -c '$(IS_PYTHON_VERSION)' >/dev/null 2>&1; then command -v "$$p"; break; fi; done)
endif
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
# checkov pins its own boto3, so it lives in an environment of its own (pyproject.toml, group checkov).
CHECKOV_VENV  := $(VENV)/checkov
CHECKOV_STAMP := $(CHECKOV_VENV)/.installed
CHECKOV       := $(CHECKOV_VENV)/bin/checkov --framework cloudformation --compact --quiet --skip-download
export SAM_CLI_TELEMETRY := 0
export PIP_DISABLE_PIP_VERSION_CHECK := 1

.PHONY: install demo test lint bench fault-matrix clean

install: $(STAMP)

$(STAMP): pyproject.toml
	@$(BIN)/python -c '$(IS_PYTHON_VERSION)' 2>/dev/null || { \
	  test -n "$(PYTHON)" || { echo "make: no Python $(PYTHON_VERSION) found: install it (pyenv install $(PYTHON_VERSION), uv python install $(PYTHON_VERSION), or your OS package python$(PYTHON_VERSION) with its venv module), or run make PYTHON=/path/to/python$(PYTHON_VERSION)" >&2; exit 1; }; \
	  rm -rf $(VENV) && $(PYTHON) -m venv $(VENV); }
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	@touch $(STAMP)

$(CHECKOV_STAMP): pyproject.toml | $(STAMP)
	@test -x $(CHECKOV_VENV)/bin/python || $(BIN)/python -m venv $(CHECKOV_VENV)
	$(CHECKOV_VENV)/bin/python -m pip install --quiet --upgrade pip
	$(CHECKOV_VENV)/bin/python -m pip install --quiet --group checkov
	@touch $(CHECKOV_STAMP)

demo: install
	$(BIN)/p1-retrain demo events/data/sample.csv --train-eval events/data/train.csv events/data/eval.csv --switch --json

# The tests wait more than they compute (Wait states, the emulator's jobs, subprocesses): four workers
# keep two cores busy; worksteal evens out the long e2e tests at the end.
TEST_WORKERS ?= 4

test: install
	$(BIN)/pytest -n $(TEST_WORKERS) --dist worksteal -q

# sam build runs the runtime's interpreter (python3.13) from PATH: the venv's comes first.
lint: export PATH := $(CURDIR)/$(BIN):$(PATH)
lint: install $(CHECKOV_STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/sam validate --lint --template template.yaml
	$(BIN)/cfn-lint --template template.yaml --append-rules cfn_lint_serverless.rules
	$(CHECKOV) --file template.yaml
	@mkdir -p .aws-sam
	$(BIN)/python -c 'import json; from p1_retrain.local.template import build; print(json.dumps(build("template.yaml", {}, "us-east-1").cloudformation))' > .aws-sam/transformed.json
	$(CHECKOV) --file .aws-sam/transformed.json
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
