# One venv at the repository root; every target installs it first if needed.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: install up test lint clean corpus lock image

install: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[mysql,postgres,nats,mqtt,pubsub,bench,dev]'
	touch $(STAMP)

up: install
	$(BIN)/weatherpipe up

lint: install
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/mypy

test: lint
	$(BIN)/pytest -q

# The labelled anomaly corpus (benchmarks/corpus/README.md); generated, never committed.
corpus: install
	$(BIN)/python -m benchmarks.corpus.generate build/corpus

clean:
	rm -rf $(VENV) weather.db .pytest_cache .mypy_cache .ruff_cache

# The image installs only what requirements/*.txt pin (with hashes). Refresh after changing
# dependencies in pyproject.toml: `make lock`, then `make image`, and commit both files.
LOCK_EXTRAS := mysql postgres nats mqtt pubsub
lock: install
	test -x $(BIN)/uv || $(BIN)/python -m pip install --quiet uv
	$(BIN)/uv pip compile pyproject.toml $(addprefix --extra ,$(LOCK_EXTRAS)) \
	  --python-version 3.11 --python-platform linux --generate-hashes \
	  --custom-compile-command "make lock" --quiet -o requirements/image.txt
	echo 'hatchling' | $(BIN)/uv pip compile - --python-version 3.11 --python-platform linux \
	  --generate-hashes --custom-compile-command "make lock" --quiet -o requirements/build.txt

# One image for every stage. Podman here (no Docker daemon); `make image ENGINE=docker` works too.
# Builds reach PyPI over the host network with the host's CA bundle (a TLS-inspecting proxy
# needs it; elsewhere the bundle is simply the usual roots). Only Podman mounts at build time.
ENGINE ?= $(shell command -v podman >/dev/null && echo podman || echo docker)
IMAGE ?= localhost/weatherpipe:latest
HOST_CA ?= /etc/ssl/certs/ca-certificates.crt
# Podman writes OCI images by default, which have no HEALTHCHECK: ask for Docker's format.
PODMAN_FLAGS := --format docker $(if $(wildcard $(HOST_CA)),-v $(HOST_CA):/run/build-ca.pem:ro --build-arg PIP_CERT=/run/build-ca.pem)
image:
	$(ENGINE) build --network host $(if $(filter podman,$(notdir $(ENGINE))),$(PODMAN_FLAGS)) \
	  --build-arg VERSION=$$(sed -n 's/^version = "\(.*\)"/\1/p' pyproject.toml) \
	  --build-arg REVISION=$$(git rev-parse --short HEAD 2>/dev/null || echo unknown) \
	  --build-arg INPUTS=$$(find requirements src pyproject.toml README.md -type f ! -name '*.pyc' \
	    -print0 | sort -z | xargs -0 sha256sum | sha256sum | cut -c1-16) \
	  -t $(IMAGE) .
	@$(ENGINE) image inspect $(IMAGE) --format '{{.Size}}' | awk '{printf "$(IMAGE): %.0f MB\n", $$1/1e6}'

# The API's token for compose.yaml, readable by you only; never overwritten (delete it to rotate).
api.env:
	(umask 077 && $(PY) -c 'import secrets; print("WEATHERPIPE_API_TOKEN=" + secrets.token_hex(24))' >$@)
