"""dnncli: dense neural networks from YAML configs, on a NumPy core.

>>> import dnncli
>>> model = dnncli.build_model({"input_shape": [3], "layers": [
...     {"type": "dense", "units": 4, "activation": "relu"},
...     {"type": "dense", "units": 2, "activation": "softmax"}]})
>>> model.count_params()
26
"""

from dnncli.errors import DnnError
from dnncli.version import __version__

__all__ = ["BatchLoss", "DnnError", "Sequential", "__version__", "build_model"]


def __getattr__(name):
    # the model (and numpy) load on first use, so that `dnn --help` starts fast
    if name in ("BatchLoss", "Sequential"):
        from dnncli.nn import model

        return getattr(model, name)
    if name == "build_model":
        from dnncli.experiment.api import build_model

        return build_model
    raise AttributeError(f"module 'dnncli' has no attribute {name!r}")
