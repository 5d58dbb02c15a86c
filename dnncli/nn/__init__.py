"""The engine: layers, losses, optimizers and the sequential model, in pure NumPy.

No files, no YAML, no printing: everything above this floor talks to it through
objects and arrays. Registries (``get(name)``) build each kind from a spec.
"""
