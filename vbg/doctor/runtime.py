"""Doctor checks for the software side: onnxruntime and CUDA, model files, numba."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import numpy as np

from vbg.doctor.check import Check
from vbg.errors import ModelError, VbgError

PROBE_MODEL = "selfie-landscape"  # the default live model


def cuda_missing_libraries() -> list[str]:
    """Shared libraries onnxruntime's CUDA provider needs but the loader cannot find (ldd)."""
    import onnxruntime as ort

    lib = Path(ort.__file__).parent / "capi" / "libonnxruntime_providers_cuda.so"
    if not lib.is_file():
        return []
    try:
        out = subprocess.run(["ldd", str(lib)], capture_output=True, text=True, timeout=10).stdout
    except (OSError, subprocess.SubprocessError):
        return []
    return [line.split()[0] for line in out.splitlines() if "not found" in line]


def cuda_problem(missing: list[str], driver_present: bool) -> tuple[str, str]:
    """(why CUDA does not run, the fix) from the missing libraries and the driver state."""
    reasons, fixes = [], []
    if not driver_present or "libcuda.so.1" in missing:
        reasons.append("no NVIDIA driver (libcuda.so.1 not found)")
        fixes.append("install the NVIDIA driver (only useful on a machine with an NVIDIA GPU)")
    runtime = [m for m in missing if m != "libcuda.so.1"]
    if runtime:
        majors = {m.rsplit(".so.", 1)[-1] for m in runtime
                  if m.startswith(("libcublas", "libcudart"))}
        cuda = f"CUDA {'/'.join(sorted(majors))}" if majors else "CUDA"
        reasons.append(f"{cuda} libraries not found: " + ", ".join(runtime))
        fixes.append(f"install the {cuda} and cuDNN 9 libraries system-wide (on the loader "
                     "path / LD_LIBRARY_PATH), or `pip install 'vbg[cuda]'` (pip's copies, which "
                     "vbg loads with onnxruntime.preload_dlls())")
    if not reasons:
        reasons.append("a session with CUDAExecutionProvider fell back to CPU (cuDNN missing, "
                       "or GPU/driver too old for this onnxruntime-gpu)")
        fixes.append("install cuDNN 9 (`pip install 'onnxruntime-gpu[cudnn]'`) and a current "
                     "driver")
    return "; ".join(reasons), "; ".join(fixes)


def _run_once(session) -> None:
    inp = session.get_inputs()[0]
    shape = [d if isinstance(d, int) and d > 0 else 1 for d in inp.shape]
    session.run(None, {inp.name: np.zeros(shape, np.float32)})


def check_onnxruntime() -> list[Check]:
    import onnxruntime as ort

    from vbg.models import verified_path
    from vbg.models.session import new_session, provider_label

    available = ort.get_available_providers()
    try:
        session = new_session(verified_path(PROBE_MODEL), "auto")
        _run_once(session)
    except VbgError as e:
        return [Check("onnxruntime", "fail", f"{ort.__version__}: {PROBE_MODEL} does not run: {e}",
                      "fix the model (see models below), or `pip install --force-reinstall "
                      "onnxruntime-gpu`")]
    label = provider_label(session)
    names = ", ".join(p.removesuffix("ExecutionProvider") for p in available)
    checks = [Check("onnxruntime", "ok",
                    f"{ort.__version__}: {PROBE_MODEL} runs on {label} (available: {names})")]
    if label == "cuda":
        checks.append(Check("cuda", "ok", "onnxruntime really runs on the GPU"))
        checks.append(check_gpu_frames())
    elif "CUDAExecutionProvider" not in available:
        checks.append(Check("cuda", "info", "this onnxruntime has no CUDA provider; CPU only "
                            "(`pip install onnxruntime-gpu` on an NVIDIA machine)"))
    else:
        reason, fix = cuda_problem(cuda_missing_libraries(),
                                   Path("/proc/driver/nvidia/version").exists())
        checks.append(Check("cuda", "info", f"not usable, CPU is used: {reason}",
                            f"optional, for a GPU: {fix}"))
    return checks


def check_gpu_frames() -> Check:
    """With CUDA inference: can numba.cuda run the blend on the GPU too (the CUDA path)?"""
    import vbg.gpu

    works, what = vbg.gpu.cuda_status()
    if works:
        return Check("gpu frames", "ok", f"numba.cuda runs kernels on {what}: upload, matte, "
                     "smoothing, blend and download all on the GPU")
    return Check("gpu frames", "info", f"inference runs on CUDA, the blend on the CPU: {what}",
                 "optional, for the whole frame on the GPU: pip install 'vbg[cuda]'")


def check_models() -> list[Check]:
    from vbg.models import manifest, models_dir, verified_path

    try:
        entries = manifest()
    except ModelError as e:
        return [Check("models", "fail", str(e), "restore vbg/models/bundled/ from the vbg source "
                      "tree, or reinstall vbg")]
    checks = []
    for name, entry in entries.items():
        try:
            path = verified_path(name)
            checks.append(Check(f"model {name}", "ok", f"{path} sha256 ok"))
        except ModelError as e:
            checks.append(Check(f"model {name}", "fail", str(e),
                                f"`git checkout -- vbg/models/bundled/{entry['file']}` in the "
                                f"vbg source tree (models dir here: {models_dir()}), or "
                                "reinstall vbg"))
    return checks


def check_rvm() -> list[Check]:
    """The optional RVM model in the user's cache (`vbg models pull rvm`)."""
    from vbg.models import user_models_dir, verify_file
    from vbg.segment.rvm import RVM_FILE, RVM_SHA256

    rvm = user_models_dir() / RVM_FILE
    if not rvm.exists():
        return [Check("model rvm", "info", "not installed (optional); "
                      f"`vbg models pull rvm` installs it to {rvm}")]
    try:
        verify_file(rvm, RVM_SHA256, restore="vbg models pull rvm")
    except ModelError as e:
        return [Check("model rvm", "warn", str(e), f"delete {rvm} and run `vbg models pull rvm`")]
    return [Check("model rvm", "ok", f"{rvm} sha256 ok")]


def check_numba() -> list[Check]:
    try:
        import numba

        from vbg.doctor import _numba_probe

        values = np.arange(1000, dtype=np.int64)
        total = _numba_probe.parallel_sum(values)
        layer = numba.threading_layer()
    except Exception as e:  # numba raises many types when a threading layer or LLVM breaks
        if "cannot cache" in str(e):
            return [Check("numba", "warn", f"no writable kernel cache: {e}",
                          "`export NUMBA_CACHE_DIR=~/.cache/vbg/numba` (any writable folder)")]
        return [Check("numba", "fail", f"a parallel kernel does not run: {e}",
                      "`pip install --force-reinstall numba`; or try "
                      "NUMBA_THREADING_LAYER=workqueue")]
    if total != int(values.sum()):
        return [Check("numba", "fail", f"a parallel sum gave {total}, expected {values.sum()}",
                      "`pip install --force-reinstall numba`")]
    cache = _numba_probe.parallel_sum.stats.cache_path
    found = f"{numba.__version__}: threading layer {layer}, {numba.get_num_threads()} threads"
    if cache and os.access(cache, os.W_OK):
        return [Check("numba", "ok", f"{found}; kernel cache {cache} writable")]
    return [Check("numba", "warn", f"{found}; kernel cache {cache or '(none)'} is not writable, "
                  "so every start compiles the kernels again (about 1 s each)",
                  "set NUMBA_CACHE_DIR to a writable folder, e.g. "
                  "`export NUMBA_CACHE_DIR=~/.cache/vbg/numba`")]
