"""Data: sources (synthetic, IDX, CSV, NPZ, NPY), splits, preprocessing fitted on the training split, augmentation.

The names below are this floor's interface to the floors above.
"""

from dnncli.data.preprocess import Preparation, Preprocessor, check_finite
from dnncli.data.sources import SOURCES, Dataset, Source, build_source, expand_path, resolve_spec
from dnncli.data.split import count_classes, split_indices, stratified_split
from dnncli.data.table import parse_targets, read_csv

__all__ = [
    "SOURCES",
    "Dataset",
    "Preparation",
    "Preprocessor",
    "Source",
    "build_source",
    "check_finite",
    "count_classes",
    "expand_path",
    "parse_targets",
    "read_csv",
    "resolve_spec",
    "split_indices",
    "stratified_split",
]
