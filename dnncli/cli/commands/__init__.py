"""The commands, by family; ``cli/app.py`` registers each on the ``dnn`` app."""
