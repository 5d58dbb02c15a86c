"""The training loop and what hooks into it: the trainer, callbacks, metrics."""
