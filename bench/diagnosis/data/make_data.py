"""Rebuild the corpus's two raw tables (deterministic): ``python bench/diagnosis/data/make_data.py``.

- ``unscaled.csv``: a house-price-like table as people export it: features in their own units (an income in the
  tens of thousands, an area in the thousands, an age, a ratio in thousandths) and a constant column; the class
  depends on every feature. Unscaled, it saturates or explodes a network's first layer.
- ``thousands.csv`` and ``prices.csv``: a class, and a price around 150,000, from four features in the thousands
  (a red team's networks, ``redteam/``): unscaled inputs, and unscaled regression targets.
- ``huge.csv``: readings around 1e19 (a sensor that reports in the wrong unit): finite in float32, but their
  squares are not, so a batch normalization layer's variance overflows.
"""

from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent


def unscaled(rng, n=1200):
    income = rng.normal(52_000, 18_000, n)
    area = rng.normal(1_600, 450, n)
    age = rng.uniform(18, 80, n)
    ratio = rng.normal(0.004, 0.0015, n)
    score = (income - 52_000) / 18_000 + (area - 1_600) / 450 - (age - 49) / 18 + (ratio - 0.004) / 0.0015
    label = (score + rng.normal(0, 0.5, n) > 0).astype(int)
    rows = ["income,area,age,ratio,region_code,label"]
    rows += [f"{a:.2f},{b:.1f},{c:.1f},{d:.6f},7,{y}" for a, b, c, d, y in zip(income, area, age, ratio, label)]
    return "\n".join(rows) + "\n"


def huge(rng, n=800):
    x = rng.normal(0, 1, (n, 4))
    label = (x[:, 0] + x[:, 1] * x[:, 2] > 0).astype(int)
    rows = ["a,b,c,d,label"]
    rows += [",".join(f"{v * 3e19:.6e}" for v in r) + f",{y}" for r, y in zip(x, label)]
    return "\n".join(rows) + "\n"


def red_team_tables(rng, n=1000) -> tuple[str, str]:
    """``thousands.csv`` (a class from four features in the thousands) and ``prices.csv`` (a price around 150,000
    from the same features): the red team's two tables, drawn as they drew them."""
    x1, x2 = rng.normal(5000, 1500, n), rng.normal(2000, 800, n)
    x3, x4 = rng.uniform(0, 10000, n), rng.normal(300, 50, n)
    z = (x1 - 5000) / 1500 * (x2 - 2000) / 800 + np.sin((x3 - 5000) / 2000) + (x4 - 300) / 50
    label = (z > 0).astype(int)
    head = "area,income,distance,age_days"
    thousands = [f"{head},label"] + [
        f"{a:.1f},{b:.1f},{c:.1f},{d:.1f},{y}" for a, b, c, d, y in zip(x1, x2, x3, x4, label)
    ]
    price = 150000 + 40 * (x1 - 5000) + 25 * (x2 - 2000) - 3 * (x3 - 5000) + 200 * (x4 - 300) + rng.normal(0, 5000, n)
    prices = [f"{head},price"] + [
        f"{a:.1f},{b:.1f},{c:.1f},{d:.1f},{p:.1f}" for a, b, c, d, p in zip(x1, x2, x3, x4, price)
    ]
    return "\n".join(thousands) + "\n", "\n".join(prices) + "\n"


if __name__ == "__main__":
    (HERE / "unscaled.csv").write_text(unscaled(np.random.default_rng(0)))
    (HERE / "huge.csv").write_text(huge(np.random.default_rng(1)))
    thousands, prices = red_team_tables(np.random.default_rng(123))
    (HERE / "thousands.csv").write_text(thousands)
    (HERE / "prices.csv").write_text(prices)
