"""Before any graph is built: onnx installed, an opset it knows, weights that fit in one file."""

from __future__ import annotations

from dnncli.errors import DnnError

OPSET = 17  # every op used exists there with today's semantics; onnxruntime has run it since 1.12
MIN_OPSET = 13  # Softmax over the last axis alone, as dnncli's softmax
MAX_PROTO_BYTES = 2**31 - 2**24  # protobuf's 2 GiB limit on one message, less room for the graph itself
INSTALL = "pip install '.[export]' in a checkout of dnncli, or pip install onnx"


def load_onnx():
    """The onnx module, or a one-line error with the install command."""
    try:
        import onnx
    except ImportError:
        raise DnnError(f"ONNX export needs the onnx package: {INSTALL}.") from None
    return onnx


def check_opset(onnx, opset) -> None:
    """An integer from ``MIN_OPSET`` to the newest opset this onnx knows."""
    latest = onnx.defs.onnx_opset_version()
    if isinstance(opset, bool) or not isinstance(opset, int) or not MIN_OPSET <= opset <= latest:
        raise DnnError(
            f"opset must be an integer from {MIN_OPSET} to {latest} (what this onnx knows). Received: {opset!r}"
        )


def check_size(model) -> None:
    """The model's weights fit in one ONNX file."""
    weight_bytes = sum(w.nbytes for layer in model.layers for w in layer.params.values())
    if weight_bytes > MAX_PROTO_BYTES:
        raise DnnError(
            f"the model's weights take {weight_bytes / 2**30:.1f} GiB; one ONNX file holds at most 2 GiB"
            " (external weight files are not supported by this exporter)."
        )
