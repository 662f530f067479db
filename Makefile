# The two commands a fresh machine needs: `make demo` and `make test`.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
DEMO   := $(CURDIR)/.demo

.PHONY: demo test venv system-deps-demo system-deps-test bench clean

$(BIN)/custody: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet --config-settings editable_mode=compat -e '.[test]'
	touch $@

venv: $(BIN)/custody

system-deps-demo:
	infra/dev/system-deps.sh venv ffmpeg b3sum

system-deps-test:
	infra/dev/system-deps.sh venv ffmpeg b3sum ceph postgresql chromium openssh terraform softhsm openssl golang stock-python

## make demo: sample clips -> ingest into the embedded default -> verify -> custody log
demo: system-deps-demo venv
	PATH="$(CURDIR)/$(BIN):$$PATH" infra/dev/demo.sh "$(DEMO)"

## make test: everything the tests need, then the whole suite
test: system-deps-test venv
	$(BIN)/python -m pytest $(PYTEST_ARGS)

bench: venv
	$(BIN)/python bench/run.py

clean:
	rm -rf $(VENV) $(DEMO) .pytest_cache
