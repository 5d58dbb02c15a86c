"""Experiments: configs, run directories, checkpoints, weights files, evaluation and prediction.

This floor is the Python API (``dnncli.experiment.api``); the command line is a thin layer over it.
"""
