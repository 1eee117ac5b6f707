# callcue: `make run` brings up the whole system and streams a sample call;
# `make test` runs the test suite. Both install what they need first.
SHELL := /bin/bash
UV ?= $(shell command -v uv 2>/dev/null || echo $(HOME)/.local/bin/uv)
PROTOS := $(shell find protos/callcue -name '*.proto')
STAMP := protos/.generated
WEB := clients/web
WEB_SOURCES := $(shell find $(WEB)/src $(WEB)/public -type f -not -path '*/gen/*' 2>/dev/null) \
	$(WEB)/index.html $(WEB)/vite.config.ts $(WEB)/package-lock.json
NPM := $(shell command -v npm 2>/dev/null)

.PHONY: install generate web run test lint typecheck check clean api-key

$(UV):
	python3 -m pip install --user --quiet 'uv>=0.9'

install: $(UV)
	$(UV) sync --frozen --quiet
	@$(MAKE) --no-print-directory generate
	@$(MAKE) --no-print-directory web

# The console's pages: built when Node.js and npm are here; everything else runs without.
web:
ifeq ($(NPM),)
	@echo "callcue: no npm here, so the console's pages are not built (install Node.js 20 with npm)"
else
	@$(MAKE) --no-print-directory $(WEB)/dist/index.html
endif

$(WEB)/node_modules/.package-lock.json: $(WEB)/package-lock.json
	cd $(WEB) && npm ci --no-audit --no-fund --loglevel=error

# TypeScript for the protos, generated like the Python (never committed).
$(WEB)/src/gen/.generated: $(PROTOS) $(WEB)/buf.gen.yaml $(WEB)/node_modules/.package-lock.json
	rm -rf $(WEB)/src/gen
	cd $(WEB) && npx buf generate ../../protos --template buf.gen.yaml
	@touch $@

$(WEB)/dist/index.html: $(WEB)/src/gen/.generated $(WEB_SOURCES)
	cd $(WEB) && npx vite build --logLevel warn

# Python code for the protos, generated beside them into the callcue-protos package.
generate: $(STAMP)
$(STAMP): $(PROTOS) uv.lock
	$(UV) run --frozen python -m grpc_tools.protoc -I protos \
		--python_out=protos --grpc_python_out=protos \
		--mypy_out=protos --mypy_grpc_out=protos $(PROTOS)
	$(UV) run --frozen python -m grpc_tools.protoc -I protos \
		--plugin=protoc-gen-connect-python=$$($(UV) run --frozen which protoc-gen-connect-python) \
		--connect-python_out=protos protos/callcue/console/v1/console_service.proto
	@touch $@

run: install
	$(UV) run --frozen callcue dev up --demo

# A new API key for TENANT (with SCOPES, or the default ones), against DATABASE_URL or the
# database of a running `make run`.
api-key: install
	@test -n "$(TENANT)" || { echo "usage: make api-key TENANT=<tenant id> [NAME=<what for>] [SCOPES='<scope> ...']"; exit 2; }
	$(UV) run --frozen callcue keys create "$(TENANT)" --name "$(NAME)" $(foreach scope,$(SCOPES),--scope $(scope))

test: install
	$(UV) run --frozen pytest

lint: install
	$(UV) run --frozen ruff check .
	$(UV) run --frozen ruff format --check .
	cd protos && npx --yes @bufbuild/buf@1.75.0 lint
	# v1 stays compatible with the API as published: protos/v1-baseline.binpb (buf build's image).
	cd protos && npx --yes @bufbuild/buf@1.75.0 breaking --against v1-baseline.binpb
ifneq ($(NPM),)
	cd $(WEB) && npx eslint .
endif

typecheck: install
	$(UV) run --frozen mypy libs/core/src services/*/src clients/cli/src
ifneq ($(NPM),)
	cd $(WEB) && npx tsc --noEmit -p .
endif

check: lint typecheck test

clean:
	rm -rf .run build $(STAMP) $(WEB)/dist $(WEB)/src/gen
	find protos/callcue -name '*_pb2*.py*' -delete
	find protos/callcue -name '*_connect.py' -delete
