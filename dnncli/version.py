"""The package version, at the bottom floor: every floor may read it (ONNX export names its producer)."""

__version__ = "0.1.0"
