"""Named datasets and the one rule that finds their files.

A config names a dataset's file as ``$DNN_DATASETS/<name>/<file>``. That
resolves to the first of these that exists:

1. ``$DNN_DATASETS/<name>/<file>``, when the variable is set;
2. ``data/<name>/<file>`` in the nearest folder, from the config's own folder
   upwards, that has it (the repository's ``data/`` for a shipped config, and
   for a run directory under ``runs/``);
3. ``data/<name>/<file>`` in the current directory (where ``dnn data fetch``
   puts downloads when the variable is unset).

When none holds it, the error names the places searched and what puts the file
there: the repository (a shipped dataset), ``dnn data fetch <name>`` (a
downloadable one) or where to get it (any other).
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path

from dnncli.data.fetch import DATASETS as DOWNLOADS
from dnncli.data.fetch import digest as file_digest
from dnncli.errors import DnnError

VARIABLE = "DNN_DATASETS"
_REFERENCE = re.compile(r"^\$(?:\{DNN_DATASETS\}|DNN_DATASETS)(?:/(.*))?$")


@dataclass(frozen=True)
class DatasetInfo:
    """One dataset a config can name.

    Parameters
    ----------
    name : str
        Its folder under ``data/`` or ``$DNN_DATASETS``.
    title, task, size : str
        What it is, what a model learns from it, and its samples x features (as the data holds them).
    availability : {"ships", "fetch", "external"}
        In the repository, downloaded by ``dnn data fetch``, or brought by the user.
    license, source : str
        Under what terms, and where this copy comes from.
    files : dict
        File name to its checksum: sha256 for shipped files, the published md5 for the others.
    config : str or None
        The shipped config that trains on it.
    """

    name: str
    title: str
    task: str
    size: str
    availability: str
    license: str
    source: str
    files: dict = field(default_factory=dict)
    config: str | None = None

    def how_to_get(self) -> str:
        """What puts the files in place, in one clause."""
        if self.availability == "ships":
            return f"it ships in the repository's data/{self.name}/; run from a checkout of dnncli"
        if self.availability == "fetch":
            return f"download it with: dnn data fetch {self.name}"
        return f"get it from {self.source} and put its files in data/{self.name}/"


CATALOG = {
    d.name: d
    for d in (
        DatasetInfo(
            "iris",
            "Iris (Fisher, 1936): 3 species of iris from 4 flower measurements",
            "multi-class (3)",
            "150 x 4",
            "ships",
            "CC BY 4.0 (UCI Machine Learning Repository)",
            "scikit-learn 1.9.1 wheel (PyPI), sklearn/datasets/data/iris.csv",
            {"iris.csv": "9cc1c345c71bcc9b486b74cbf6063fa66f4bb5e0f603a4b3c3471ec2e5e8e355"},
            "configs/iris.yaml",
        ),
        DatasetInfo(
            "breast-cancer",
            "Breast Cancer Wisconsin (Diagnostic): malignant or benign from 30 nucleus measurements",
            "binary",
            "569 x 30",
            "ships",
            "CC BY 4.0 (UCI Machine Learning Repository)",
            "scikit-learn 1.9.1 wheel (PyPI), sklearn/datasets/data/breast_cancer.csv",
            {"breast_cancer.csv": "e625156c38943b03f749477157b8c1e3aa0e564c4b4705abeadfdc4ace9e2acf"},
            "configs/breast_cancer.yaml",
        ),
        DatasetInfo(
            "auto-mpg",
            "Auto MPG (UCI): a car's fuel economy from its engine, weight, year and origin",
            "regression",
            "398 x 8",
            "ships",
            "CC BY 4.0 (UCI Machine Learning Repository)",
            "vega_datasets 0.9.0 wheel (PyPI), vega_datasets/_data/cars.json",
            {"auto_mpg.csv": "4ffe2fb4136a46ae9e4e95196ccf6223bc31ede761efe4364fe19142576326af"},
            "configs/auto_mpg.yaml",
        ),
        DatasetInfo(
            "mnist",
            "MNIST: handwritten digits, 28x28 grey images",
            "multi-class (10)",
            "70000 x 28x28",
            "fetch",
            "the authors' data (LeCun, Cortes, Burges), commonly redistributed under CC BY-SA 3.0",
            "https://ossci-datasets.s3.amazonaws.com/mnist/",
            dict(DOWNLOADS["mnist"]["files"]),
            "configs/mnist.yaml",
        ),
        DatasetInfo(
            "fashion-mnist",
            "Fashion-MNIST (Zalando): 10 kinds of clothing, 28x28 grey images",
            "multi-class (10)",
            "70000 x 28x28",
            "fetch",
            "MIT, Copyright (c) 2017 Zalando SE",
            "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",
            dict(DOWNLOADS["fashion-mnist"]["files"]),
            "configs/fashion_mnist.yaml",
        ),
        DatasetInfo(
            "california-housing",
            "California housing (1990 census): median house value of a block group",
            "regression",
            "20640 x 9",
            "external",
            "StatLib data (Pace and Barry, 1997); this copy from ageron/handson-ml2 (Apache-2.0)",
            "https://github.com/ageron/handson-ml2/tree/master/datasets/housing",
            {"housing.csv": "d1c47305887e2252bf1ccbd74ff159a6"},
            "configs/california_housing.yaml",
        ),
        DatasetInfo(
            "pima-indians-diabetes",
            "Pima Indians diabetes: onset of diabetes from 8 medical measurements",
            "binary",
            "768 x 8",
            "external",
            "National Institute of Diabetes and Digestive and Kidney Diseases; no license stated by the copy",
            "https://github.com/jbrownlee/Datasets",
            {"pima-indians-diabetes.csv": "56a8d8ae619fcc223941e54f361b8406"},
            "configs/pima_diabetes.yaml",
        ),
    )
}


def reference(text: str) -> str | None:
    """The part after ``$DNN_DATASETS/`` of a path, or None for any other path."""
    m = _REFERENCE.match(text)
    return None if m is None else (m.group(1) or "")


def _folders(base_dirs) -> list[Path]:
    """Each config folder and every folder above it, in order."""
    if base_dirs is None or isinstance(base_dirs, (str, Path)):
        base_dirs = [] if base_dirs is None else [base_dirs]
    out: list[Path] = []
    for base in base_dirs:
        base = Path(base).resolve()
        out += [base, *base.parents]
    return out


def candidates(rest: str, base_dirs=()) -> list[Path]:
    """Every place, in order, where ``$DNN_DATASETS/<rest>`` may be; ``base_dirs``: the config's folder(s)."""
    found: list[Path] = []
    if os.environ.get(VARIABLE):
        found.append(Path(os.path.expanduser(os.environ[VARIABLE])) / rest)
    found += [folder / "data" / rest for folder in _folders(base_dirs)]
    found.append(Path.cwd() / "data" / rest)
    unique: list[Path] = []
    for p in found:
        if p not in unique:
            unique.append(p)
    return unique


def locate(text: str, base_dirs=()) -> Path:
    """The file or folder a ``$DNN_DATASETS/...`` path names; a DnnError saying where it looked if none holds it."""
    rest = reference(text)
    if rest is None:
        raise ValueError(f"not a dataset path: {text!r}")
    for p in candidates(rest, base_dirs):
        if p.exists():
            return p
    raise DnnError(missing_message(text, rest, base_dirs), ("path",))


def missing_message(text: str, rest: str, base_dirs=()) -> str:
    """Where ``$DNN_DATASETS/<rest>`` was looked for, and what puts it there."""
    name = rest.split("/", 1)[0]
    var = os.environ.get(VARIABLE)
    places = [f"${VARIABLE} ({Path(var) / rest})" if var else f"${VARIABLE} (not set)"]
    local = Path.cwd() / "data"
    repo = next((f / "data" for f in _folders(base_dirs) if (f / "data").is_dir()), None)
    folders = [repo, local] if repo is not None and repo != local.resolve() else [local]
    places.append("data/ (" + " or ".join(str(f / rest) for f in folders) + ")")
    info = CATALOG.get(name)
    fix = info.how_to_get() if info else f"put it in data/{name}/, or set {VARIABLE} to the folder that holds {name}/"
    return f"{text}: not found in {' nor in '.join(places)}; {fix}."


def default_directory(name: str) -> Path:
    """Where ``dnn data fetch NAME`` puts files: ``$DNN_DATASETS/NAME``, else ``data/NAME`` here."""
    if os.environ.get(VARIABLE):
        return Path(os.path.expanduser(os.environ[VARIABLE])) / name
    return Path("data") / name


@dataclass
class Presence:
    """Where one dataset was found, and whether its files are complete."""

    info: DatasetInfo
    folder: Path | None
    missing: list[str]

    @property
    def present(self) -> bool:
        return self.folder is not None and not self.missing


def survey(base_dirs=()) -> list[Presence]:
    """Each catalogued dataset, with the first folder (by the rule above) that holds it."""
    out = []
    for info in CATALOG.values():
        best: tuple[Path, list[str]] | None = None
        for folder in candidates(info.name, base_dirs):
            if not folder.is_dir():
                continue
            missing = [f for f in info.files if not _has(folder, f)]
            if best is None or len(missing) < len(best[1]):
                best = (folder, missing)
            if not missing:
                break
        out.append(Presence(info, best[0] if best else None, best[1] if best else list(info.files)))
    return out


def _has(folder: Path, file: str) -> bool:
    # IDX files may sit uncompressed beside (or instead of) the published .gz
    return (folder / file).exists() or (file.endswith(".gz") and (folder / file[:-3]).exists())


def verify(presence: Presence) -> list[tuple[str, bool | None]]:
    """(file, checksum matches) for a present dataset; None where no checksum is published."""
    out: list[tuple[str, bool | None]] = []
    info = presence.info
    for file, expected in info.files.items():
        path = presence.folder / file if presence.folder else None
        if not expected or path is None or not path.exists():
            out.append((file, None))
            continue
        got = file_digest(path, "sha256" if len(expected) == 64 else "md5")
        out.append((file, got == expected))
    return out


def listing(base_dirs=(), check: bool = False) -> dict:
    """``dnn data list``: every catalogued dataset, where the rule finds it, and (``check``) its checksums."""
    rows = []
    for p in survey(base_dirs):
        info = p.info
        sums = [{"file": f, "ok": ok} for f, ok in verify(p)] if check and p.folder is not None else None
        rows.append(
            {
                "name": info.name,
                "title": info.title,
                "task": info.task,
                "size": info.size,
                "availability": info.availability,
                "license": info.license,
                "source": info.source,
                "config": info.config,
                "present": p.present,
                "folder": str(p.folder) if p.folder is not None else None,
                "missing": p.missing,
                "checksums": sums,
                "get": None if p.present else info.how_to_get(),
            }
        )
    var = os.environ.get(VARIABLE)
    return {"variable": var, "search": [str(c) for c in candidates("<name>", base_dirs)], "datasets": rows}
