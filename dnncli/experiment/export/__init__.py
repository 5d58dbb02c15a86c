"""ONNX export of a finished run: raw inputs in, ``dnn predict``'s probabilities (and class) or values out.

The graph holds everything ``dnn predict`` does after reading its input file: the run's input scaling, every
layer in inference mode (batch normalization folded from its moving statistics, dropout gone), the output
activation, the loss's probabilities transform for a classifier trained on logits, and for regression the
target scaling undone. Each piece mirrors the NumPy code's formula and its order of operations, with constants
of the model's dtype, so that onnxruntime's numbers equal ``dnn predict``'s to rounding.

``onnx`` is an optional dependency, imported only when a model is exported.

The rooms: ``checks`` (onnx there, the opset, the size), ``graph`` (the graph under construction), ``layers``
and ``activations`` (one function per kind), ``transforms`` (the run's input scaling and output transforms),
``build`` (the checked model), ``write`` (the file), ``result`` (what is reported).
"""

from dnncli.experiment.export.build import build_onnx
from dnncli.experiment.export.checks import MIN_OPSET, OPSET
from dnncli.experiment.export.result import ExportResult, ExportStep, TensorSpec
from dnncli.experiment.export.write import export_onnx

__all__ = ["MIN_OPSET", "OPSET", "ExportResult", "ExportStep", "TensorSpec", "build_onnx", "export_onnx"]
