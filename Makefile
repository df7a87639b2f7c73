# Two commands on a fresh machine with Python 3.11+ and make: `make demo`, `make test`.
# `make setup ORT=cpu`: onnxruntime (CPU only, 78 MB installed) instead of onnxruntime-gpu (340 MB).
# `make install`: a `vbg` launcher in ~/.local/bin (BIN=...) running this checkout's .venv.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
ORT ?= gpu
STAMP := $(VENV)/.installed-$(ORT)
BIN ?= $(HOME)/.local/bin
LAUNCHER_MARK := vbg launcher (make install)
# The test extra from pyproject.toml, for the CPU path (which installs vbg with --no-deps).
PIP_TEST_EXTRA := import subprocess, sys, tomllib; \
	extra = tomllib.load(open("pyproject.toml", "rb"))["project"]["optional-dependencies"]["test"]; \
	sys.exit(subprocess.call([sys.executable, "-m", "pip", "install", "--quiet", *extra]))

.PHONY: setup test lint demo models clean install uninstall

# setup also compiles the image kernels once (numba's cache, ~/.cache/vbg/numba), so the first
# real run starts in seconds; it says so when it compiles, and is instant when they are built.
setup: $(STAMP)
	@$(PY) -m vbg.warmup

$(STAMP): pyproject.toml requirements-cpu.txt
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "vbg needs Python 3.11 or newer")'
	@case "$(ORT)" in gpu|cpu) ;; *) echo "ORT=$(ORT): use ORT=gpu (default) or ORT=cpu"; exit 2;; esac
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
ifeq ($(ORT),cpu)
	-@$(PY) -m pip uninstall --quiet --yes onnxruntime-gpu 2>/dev/null
	$(PY) -m pip install --quiet -r requirements-cpu.txt
	$(PY) -m pip install --quiet --no-deps -e .
	@$(PY) -c '$(PIP_TEST_EXTRA)'
else
	-@$(PY) -m pip uninstall --quiet --yes onnxruntime 2>/dev/null
	$(PY) -m pip install --quiet -e '.[test]'
endif
	@rm -f $(VENV)/.installed $(VENV)/.installed-*
	@touch $(STAMP)

lint: setup
	$(VENV)/bin/ruff check vbg tests tools

test: setup lint
	@sh tools/ensure_chromium.sh
	$(VENV)/bin/pytest -q
	@echo "The CUDA path's tests again, under numba's CUDA simulator:"
	NUMBA_ENABLE_CUDASIM=1 $(VENV)/bin/pytest -q tests/test_gpu.py

demo: setup
	$(PY) tools/demo.py

# A launcher script (not a copy): it runs this checkout's .venv, so `git pull` + `make setup`
# update it. configs/vbg.service expects vbg here. An unrelated vbg already there is kept.
install: setup
	@mkdir -p "$(BIN)"
	@if [ -e "$(BIN)/vbg" ] && ! grep -qs '$(LAUNCHER_MARK)' "$(BIN)/vbg"; then \
		echo "make install: $(BIN)/vbg exists and is not this launcher (pipx? pip --user?);" \
			"remove it first, or choose another folder with BIN=..."; exit 1; fi
	@printf '#!/bin/sh\n# %s: runs vbg from %s\nexec "%s" "$$@"\n' '$(LAUNCHER_MARK)' \
		"$(CURDIR)" "$(CURDIR)/$(VENV)/bin/vbg" > "$(BIN)/.vbg.tmp"
	@chmod 755 "$(BIN)/.vbg.tmp" && mv -f "$(BIN)/.vbg.tmp" "$(BIN)/vbg"
	@echo "installed $(BIN)/vbg (runs $(CURDIR)/$(VENV)/bin/vbg)"
	@case ":$$PATH:" in *":$(BIN):"*) ;; *) echo "note: $(BIN) is not on your PATH; add" \
		"'export PATH=\"$(BIN):\$$PATH\"' to ~/.profile, then log in again";; esac

uninstall:
	@if grep -qs '$(LAUNCHER_MARK)' "$(BIN)/vbg"; then rm -f "$(BIN)/vbg" && \
		echo "removed $(BIN)/vbg"; else echo "make uninstall: no vbg launcher in $(BIN)"; fi

# Re-create models/*.onnx from the pinned mediapipe wheel (heavy: TensorFlow, in its own venv).
models:
	@test -x .tools-venv/bin/python || $(PYTHON) -m venv .tools-venv
	.tools-venv/bin/pip install --quiet 'tensorflow-cpu==2.21.*' 'tf2onnx==1.17.*' onnx onnxruntime opencv-python-headless
	.tools-venv/bin/python tools/convert_models.py

clean:
	rm -rf $(VENV) .tools-venv .pytest_cache .ruff_cache demo-out
