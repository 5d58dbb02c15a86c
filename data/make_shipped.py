"""Rebuild the CSV files that ship in data/ from the package-registry wheels they come from.

    pip download --no-deps --only-binary=:all: -d /tmp/wheels scikit-learn==1.9.1 vega_datasets==0.9.0
    python data/make_shipped.py /tmp/wheels

The CSVs are rewritten byte for byte (check with ``dnn data list --verify`` or the
checksums in data/README.md); the script only reshapes, it changes no value:
a header line with named columns replaces scikit-learn's count line, class
codes become names, and Auto MPG's 8 rows without a target are left out.
"""

from __future__ import annotations

import csv
import io
import json
import sys
import zipfile
from pathlib import Path

HERE = Path(__file__).resolve().parent

BREAST_FEATURES = [
    "radius",
    "texture",
    "perimeter",
    "area",
    "smoothness",
    "compactness",
    "concavity",
    "concave_points",
    "symmetry",
    "fractal_dimension",
]


def member(wheels: Path, pattern: str, name: str) -> bytes:
    wheel = sorted(wheels.glob(pattern))
    if not wheel:
        sys.exit(f"no wheel {pattern} in {wheels}")
    with zipfile.ZipFile(wheel[-1]) as z:
        return z.read(name)


def write(path: Path, header: list[str], rows: list[list]) -> None:
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(header)
    w.writerows(rows)
    path.parent.mkdir(exist_ok=True)
    path.write_text(buf.getvalue(), encoding="utf-8")
    print(f"{path.relative_to(HERE.parent)}: {len(rows)} rows")


def sklearn_table(wheels: Path, file: str) -> tuple[list[str], list[list[str]]]:
    text = member(wheels, "scikit_learn-*.whl", f"sklearn/datasets/data/{file}").decode()
    lines = list(csv.reader(io.StringIO(text)))
    # first line: samples, features, then the class names in code order
    n, _, *classes = lines[0]
    rows = lines[1:]
    if len(rows) != int(n):
        sys.exit(f"{file}: {len(rows)} rows, the header says {n}")
    return classes, rows


def iris(wheels: Path) -> None:
    classes, rows = sklearn_table(wheels, "iris.csv")
    header = ["sepal_length", "sepal_width", "petal_length", "petal_width", "species"]
    write(HERE / "iris" / "iris.csv", header, [[*r[:4], classes[int(r[4])]] for r in rows])


def breast_cancer(wheels: Path) -> None:
    classes, rows = sklearn_table(wheels, "breast_cancer.csv")
    # scikit-learn codes malignant 0 and benign 1; UCI's wdbc.data writes M and B
    letter = {"malignant": "M", "benign": "B"}
    header = [f"{f}_{part}" for part in ("mean", "se", "worst") for f in BREAST_FEATURES] + ["diagnosis"]
    out = [[*r[:30], letter[classes[int(r[30])]]] for r in rows]
    write(HERE / "breast-cancer" / "breast_cancer.csv", header, out)


def auto_mpg(wheels: Path) -> None:
    cars = json.loads(member(wheels, "vega_datasets-*.whl", "vega_datasets/_data/cars.json"))
    header = [
        "mpg",
        "cylinders",
        "displacement",
        "horsepower",
        "weight",
        "acceleration",
        "model_year",
        "origin",
        "name",
    ]
    rows = []
    for c in cars:
        if c["Miles_per_Gallon"] is None:  # UCI's auto-mpg.data leaves these 8 out too
            continue
        hp = "" if c["Horsepower"] is None else c["Horsepower"]
        year = int(c["Year"][2:4])  # "1970-01-01": the model year, as UCI writes it (70)
        rows.append(
            [
                c["Miles_per_Gallon"],
                c["Cylinders"],
                c["Displacement"],
                hp,
                c["Weight_in_lbs"],
                c["Acceleration"],
                year,
                c["Origin"],
                c["Name"],
            ]
        )
    write(HERE / "auto-mpg" / "auto_mpg.csv", header, rows)


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    folder = Path(sys.argv[1])
    iris(folder)
    breast_cancer(folder)
    auto_mpg(folder)
