"""One onnxruntime session factory: provider choice verified, spinning off, threads set."""

from __future__ import annotations

import contextlib
import functools
import importlib.util
import io
import os
from pathlib import Path

from vbg.errors import ModelError, VbgError

# onnxruntime is imported where a session is made, not at the top: `vbg --help` and
# `vbg doctor` (which reports a missing or broken onnxruntime) must work without it.
PROVIDERS = ("auto", "cuda", "cpu")
_CUDA = "CUDAExecutionProvider"
_CPU = "CPUExecutionProvider"


def default_threads(heavy: bool = False) -> int:
    """Small networks: one thread (least CPU per frame; a second thread only adds
    synchronisation). Heavy networks (RVM): up to 4 threads for the frame rate."""
    return max(1, min(4, os.cpu_count() or 1)) if heavy else 1


@functools.cache
def _preload_cuda_libraries() -> None:
    """Load CUDA/cuDNN from pip's nvidia-* packages (the `vbg[cuda]` extra) when they are
    installed: onnxruntime looks only on the loader path otherwise."""
    import onnxruntime as ort

    if importlib.util.find_spec("nvidia") is None or not hasattr(ort, "preload_dlls"):
        return
    with contextlib.redirect_stdout(io.StringIO()):  # it prints each library it misses
        ort.preload_dlls()


def new_session(path: Path, provider: str = "auto", threads: int | None = None,
                heavy: bool = False):
    """Create an InferenceSession; `session.get_providers()[0]` is the provider that really runs.

    auto: CUDA if a session really starts on it, else CPU. cuda: CUDA or a clear error.
    """
    import onnxruntime as ort

    if provider not in PROVIDERS:
        raise VbgError(f"unknown provider {provider!r}; choose one of {', '.join(PROVIDERS)}")
    ort.set_default_logger_severity(4)  # a CUDA fallback is reported by us, not as a log line
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads or default_threads(heavy)
    opts.inter_op_num_threads = 1
    opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
    opts.add_session_config_entry("session.inter_op.allow_spinning", "0")
    opts.log_severity_level = 3

    def make(providers: list[str]):
        try:
            return ort.InferenceSession(str(path), sess_options=opts, providers=providers)
        except Exception as e:  # onnxruntime raises its own Fail/InvalidProtobuf types
            raise ModelError(f"model file {path} cannot be loaded by onnxruntime: {e}") from None

    if provider in ("auto", "cuda") and _CUDA in ort.get_available_providers():
        _preload_cuda_libraries()
        session = make([_CUDA, _CPU])
        if session.get_providers()[0] == _CUDA:
            return session
    if provider == "cuda":
        raise VbgError(
            "--provider cuda: CUDA does not really work here (onnxruntime fell back to CPU; "
            "check the NVIDIA driver and the CUDA/cuDNN libraries onnxruntime-gpu needs; "
            "`vbg doctor` names what is missing). "
            "Use --provider auto or cpu."
        )
    return make([_CPU])


def provider_label(session) -> str:
    """'cuda' or 'cpu': what really runs this session."""
    return "cuda" if session.get_providers()[0] == _CUDA else "cpu"
