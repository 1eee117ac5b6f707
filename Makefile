# callcue: `make run` brings up the whole system and streams a sample call;
# `make test` runs the test suite. Both install what they need first.
SHELL := /bin/bash
UV ?= $(shell command -v uv 2>/dev/null || echo $(HOME)/.local/bin/uv)
PROTOS := $(shell find protos/callcue -name '*.proto')
STAMP := protos/.generated

.PHONY: install generate run test lint typecheck check clean api-key

$(UV):
	python3 -m pip install --user --quiet 'uv>=0.9'

install: $(UV)
	$(UV) sync --frozen --quiet
	@$(MAKE) --no-print-directory generate

# Python code for the protos, generated beside them into the callcue-protos package.
generate: $(STAMP)
$(STAMP): $(PROTOS) uv.lock
	$(UV) run --frozen python -m grpc_tools.protoc -I protos \
		--python_out=protos --grpc_python_out=protos \
		--mypy_out=protos --mypy_grpc_out=protos $(PROTOS)
	@touch $@

run: install
	$(UV) run --frozen callcue dev up --demo

# A new API key for TENANT, against DATABASE_URL or the database of a running `make run`.
api-key: install
	@test -n "$(TENANT)" || { echo "usage: make api-key TENANT=<tenant id> [NAME=<what for>]"; exit 2; }
	$(UV) run --frozen callcue keys create "$(TENANT)" --name "$(NAME)"

test: install
	$(UV) run --frozen pytest

lint: install
	$(UV) run --frozen ruff check .
	$(UV) run --frozen ruff format --check .
	cd protos && npx --yes @bufbuild/buf@1.75.0 lint

typecheck: install
	$(UV) run --frozen mypy libs/core/src services/*/src clients/cli/src

check: lint typecheck test

clean:
	rm -rf .run build $(STAMP)
	find protos/callcue -name '*_pb2*.py*' -delete
