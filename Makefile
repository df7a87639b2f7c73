# Two commands on a fresh machine with Python 3.11+ and make: `make demo`, `make test`.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: setup test lint demo models clean

setup: $(STAMP)

$(STAMP): pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "vbg needs Python 3.11 or newer")'
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[test]'
	@touch $(STAMP)

lint: setup
	$(VENV)/bin/ruff check vbg tests tools

test: setup lint
	$(VENV)/bin/pytest -q
	@echo "The CUDA path's tests again, under numba's CUDA simulator:"
	NUMBA_ENABLE_CUDASIM=1 $(VENV)/bin/pytest -q tests/test_gpu.py

demo: setup
	$(PY) tools/demo.py

# Re-create models/*.onnx from the pinned mediapipe wheel (heavy: TensorFlow, in its own venv).
models:
	@test -x .tools-venv/bin/python || $(PYTHON) -m venv .tools-venv
	.tools-venv/bin/pip install --quiet 'tensorflow-cpu==2.21.*' 'tf2onnx==1.17.*' onnx onnxruntime opencv-python-headless
	.tools-venv/bin/python tools/convert_models.py

clean:
	rm -rf $(VENV) .tools-venv .pytest_cache .ruff_cache demo-out
