# LMCodec: `make demo` and `make test` set up everything on a fresh machine.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
PIP := $(VENV)/bin/pip
SPEECH_DIR ?= $(abspath ../shared/data/speech)
IN ?=
# torch first, pinned: it is the CPU build on local disk here; an unpinned torch pulled in by another package
# would download a multi-GB CUDA build.
TORCH := torch==2.13.0

.PHONY: demo test bench install install-dev clean

$(VENV)/.installed: pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PIP) install -q --upgrade pip
	$(PIP) install -q $(TORCH)
	$(PIP) install -q -e .
	touch $@

$(VENV)/.installed-dev: $(VENV)/.installed pyproject.toml
	$(PIP) install -q $(TORCH) -e ".[dev,eval,train,export]"
	touch $@

install: $(VENV)/.installed
install-dev: $(VENV)/.installed-dev

# Without IN: a real recording from ../shared/data/speech, else a sentence spoken by espeak-ng (installed if needed).
demo: $(VENV)/.installed
	@if [ -z "$(IN)" ] && [ ! -d "$(SPEECH_DIR)" ] && ! command -v espeak-ng >/dev/null; then \
		apt-get update -qq && apt-get install -y -qq espeak-ng >/dev/null; fi
	$(VENV)/bin/lmcodec demo $(IN) --speech-dir "$(SPEECH_DIR)"

# Reference codecs for the evaluation tests (skipped, not failed, where they cannot be installed).
test: $(VENV)/.installed-dev
	@command -v c2enc >/dev/null && command -v opusenc >/dev/null || \
		(apt-get update -qq && apt-get install -y -qq codec2 opus-tools >/dev/null) || \
		echo "codec2 / opus-tools not installed: their tests will be skipped"
	$(PY) -m pytest -q

# The README's Performance table: whole processes of the command line against Codec2, Opus and (when LYRA_DIR holds
# its models) Lyra v2. Needs codec2, opus-tools and GNU time; ai-edge-litert for Lyra.
LYRA_DIR ?= $(abspath ../shared/anchors/lyra-v2)
bench: $(VENV)/.installed-dev
	@command -v c2enc >/dev/null && command -v opusenc >/dev/null || \
		(apt-get update -qq && apt-get install -y -qq codec2 opus-tools time >/dev/null)
	$(PIP) install -q ai-edge-litert || echo "ai-edge-litert not installed: Lyra v2 will be skipped"
	$(PY) benchmarks/bench_runtime.py --speech-dir "$(SPEECH_DIR)" $(if $(wildcard $(LYRA_DIR)),--lyra-dir "$(LYRA_DIR)")

clean:
	rm -rf $(VENV) build dist *.egg-info outputs
