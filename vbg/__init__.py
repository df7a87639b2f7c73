"""vbg: real-time virtual background camera and portrait cut-outs."""

__version__ = "0.1.0"
