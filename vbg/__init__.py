"""vbg: real-time virtual background camera and portrait cut-outs."""

__version__ = "0.1.0"

import os as _os

# numba's OpenMP worker threads must wait passively: spinning burned 2.5-3x the CPU of the work
# itself per frame here (and onnxruntime's spinning is turned off for the same reason). This
# only takes effect before the first parallel kernel runs, hence here.
_os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
