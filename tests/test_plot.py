"""``dnn plot``'s gradient heat map: exact zeros, missing cells, layer labels at any depth, flag onsets."""

import csv
import itertools
from pathlib import Path

import numpy as np
import pytest
import yaml
from typer.testing import CliRunner

from dnncli.cli.app import app

pytest.importorskip("matplotlib")

from matplotlib.colors import to_rgb

from dnncli.experiment import plot

# relu layers whose second layer starts with biases of -5: most of its units never fire, so the run raises
# dead (and collapsed) within its first epochs; 200 samples keep it well under a second
DEAD = {
    "name": "dead_tiny",
    "seed": 0,
    "data": {"source": "synthetic", "generator": "blobs", "n_samples": 200, "n_features": 4, "classes": 2},
    "model": {
        "input_shape": [4],
        "layers": [
            {"type": "dense", "units": 8, "activation": "relu", "kernel_initializer": "he_normal"},
            {
                "type": "dense",
                "units": 8,
                "activation": "relu",
                "bias_initializer": {"name": "constant", "value": -5},
            },
            {"type": "dense", "units": 1, "activation": "sigmoid"},
        ],
    },
    "loss": "binary_crossentropy",
    "optimizer": {"name": "adam", "learning_rate": 0.001},
    "training": {"epochs": 3, "batch_size": 32},
}


def run(*args):
    return CliRunner().invoke(app, [str(a) for a in args])


def write_run(path: Path, norms: np.ndarray) -> Path:
    """A run directory by hand: ``norms[layer, epoch]`` as gradients.csv (NaN: no record), and a history.

    Two steps an epoch, both with the cell's norm, so that the epoch mean is the cell's value.
    """
    path.mkdir()
    layers, epochs = norms.shape
    with open(path / "history.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["epoch", "loss"])
        w.writerows([e + 1, 1.0 / (e + 1)] for e in range(epochs))
    with open(path / "gradients.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["epoch", "step", "layer_index", "layer", "grad_norm"])
        for e, step, i in itertools.product(range(epochs), range(2), range(layers)):
            if not np.isnan(norms[i, e]):
                w.writerow([e + 1, 2 * e + step + 1, i, "dense" if i == 0 else f"dense_{i}", norms[i, e]])
    return path


def heat_map(fig):
    (ax,) = [a for a in fig.axes if a.get_label() == plot.HEAT_MAP_LABEL]
    return ax


def pixel(fig, ax, epoch, row):
    """The rendered RGB at the centre of the cell (epoch, row)."""
    fig.canvas.draw()
    image = np.asarray(fig.canvas.buffer_rgba())[..., :3] / 255
    x, y = ax.transData.transform((epoch, row))
    return image[image.shape[0] - round(y), round(x)]


def legend_texts(fig):
    return [t.get_text() for legend in fig.legends for t in legend.get_texts()]


@pytest.fixture
def figures():
    import matplotlib.pyplot as plt

    made = []
    yield lambda run_dir: made.append(plot._figure(Path(run_dir))) or made[-1]
    for fig in made:
        plt.close(fig)


def test_exact_zeros_have_their_own_colour_and_legend_entry_and_missing_cells_another(tmp_path, figures):
    norms = np.geomspace(1e-6, 1.0, 12).reshape(4, 3)
    norms[1, :] = 0.0  # a layer that passes back nothing at all
    norms[3, 1] = np.nan  # an epoch with no record for the last layer
    fig = figures(write_run(tmp_path / "run", norms))
    ax = heat_map(fig)
    zero = np.array(to_rgb(plot.ZERO_COLOUR))
    for epoch in (1, 2, 3):
        assert np.abs(pixel(fig, ax, epoch, 1) - zero).max() < 0.02
    # the zero colour is no colour of the scale, and not white (what a zero looked like before)
    viridis = plot._viridis()(np.linspace(0, 1, 256))[:, :3]
    assert np.linalg.norm(viridis - zero, axis=1).min() > 0.3
    missing = pixel(fig, ax, 2, 3)
    assert np.abs(missing - zero).max() > 0.3 and missing.min() < 0.95  # neither the zero colour nor white
    assert np.linalg.norm(viridis - missing, axis=1).min() > 0.1
    assert np.abs(pixel(fig, ax, 2, 0) - zero).max() > 0.3  # a positive norm keeps the scale's colour
    assert legend_texts(fig) == ["exactly 0", "no record"]
    # no config.yaml to replay the flags from: the plot still comes, and says why it has no markers
    assert "flag onsets not shown" in ax.get_title()


def test_no_zero_or_missing_entry_when_there_are_none(tmp_path, figures):
    fig = figures(write_run(tmp_path / "run", np.geomspace(1e-3, 1.0, 6).reshape(2, 3)))
    assert legend_texts(fig) == []


@pytest.mark.parametrize("depth", [3, 26, 80])
def test_layer_labels_never_overlap(tmp_path, figures, depth):
    norms = np.geomspace(1e-9, 1.0, depth)[:, None] * np.ones((1, 4))
    fig = figures(write_run(tmp_path / "run", norms))
    ax = heat_map(fig)
    fig.canvas.draw()
    labels = [t for t in ax.get_yticklabels() if t.get_visible() and t.get_text()]
    boxes = [t.get_window_extent() for t in labels]
    assert not any(a.overlaps(b) for a, b in itertools.combinations(boxes, 2))
    page = fig.bbox
    assert all(page.x0 <= b.x0 and b.x1 <= page.x1 and page.y0 <= b.y0 and b.y1 <= page.y1 for b in boxes)
    texts = [t.get_text() for t in labels]
    assert texts[0] == "0: dense"
    if depth <= 26:
        assert texts == ["0: dense"] + [f"{i}: dense_{i}" for i in range(1, depth)]  # every layer named
    else:
        assert len(texts) >= depth // 3  # every k-th layer, k as small as fits
        assert "one label every" in ax.get_ylabel()
    # every row keeps a tick (matplotlib drops the minor ticks that fall on a major one)
    assert set(ax.get_yticks()) | set(ax.get_yticks(minor=True)) == set(range(depth))


def test_flag_onsets_are_marked_at_their_epoch_and_layer(tmp_path, figures):
    from dnncli.experiment.inspection import inspect_run

    (tmp_path / "dead.yaml").write_text(yaml.safe_dump(DEAD))
    out = tmp_path / "run"
    r = run("train", tmp_path / "dead.yaml", "--out", out, "--quiet")
    assert r.exit_code == 0, r.output
    report = inspect_run(out)
    expected = {
        (info.flag, info.onset_epoch, row) for row, layer in enumerate(report.layers) for info in layer.flag_info
    }
    assert {flag for flag, _, row in expected if row == 1} & {"dead", "collapsed"}
    fig = figures(out)
    ax = heat_map(fig)
    # the rows are the layers inspect-gradients lists, in its order
    texts = [t.get_text() for t in ax.get_yticklabels()]
    assert texts == [f"{layer.index}: {layer.name}" for layer in report.layers]
    marked = set()
    for line in ax.get_lines():
        flag = line.get_label().removeprefix("onset: ")
        for x, y in zip(line.get_xdata(), line.get_ydata()):
            assert abs(x - round(x)) <= 0.3  # inside its epoch's cell, even when set beside another flag's
            marked.add((flag, round(x), int(y)))
    assert marked == expected
    markers = {line.get_label(): line.get_marker() for line in ax.get_lines()}
    assert len(set(markers.values())) == len(markers)  # one shape per flag
    assert {f"onset: {flag}" for flag, _, _ in expected} <= set(legend_texts(fig))
    assert "flag onsets not shown" not in ax.get_title()


def test_dnn_plot_writes_the_png_and_nothing_else(tmp_path):
    norms = np.geomspace(1e-6, 1.0, 30).reshape(10, 3)
    norms[2, 0] = 0.0
    run_dir = write_run(tmp_path / "run", norms)
    before = set(run_dir.iterdir())
    r = run("plot", run_dir, "--out", tmp_path / "run" / "heat.png")
    assert r.exit_code == 0, r.output
    assert set(run_dir.iterdir()) - before == {run_dir / "heat.png"}  # no temporary file left beside it
    assert (run_dir / "heat.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_the_noise_scale_by_epoch_and_the_activations_over_the_run(tmp_path, figures):
    import matplotlib.pyplot as plt

    from dnncli.diagnostics import histograms
    from dnncli.experiment import plot_instruments

    config = tmp_path / "dead.yaml"
    config.write_text(yaml.safe_dump({**DEAD, "training": {"epochs": 10, "batch_size": 32}, "monitor": {"every": 1}}))
    out = tmp_path / "run"
    assert run("train", config, "--out", out, "--quiet").exit_code == 0
    with open(out / "gradients.csv") as f:
        rows = list(csv.DictReader(f))
    hist = [r for r in rows if r["act_hist"]]  # the instruments measure every 20 steps at the least
    assert {int(r["step"]) for r in hist} == {s for s in range(1, len(rows) // 3 + 1) if (s - 1) % 20 == 0}
    assert all(sum(map(int, r["act_hist"].split())) == 32 * 8 for r in hist if r["layer_index"] in ("0", "1"))
    fig = figures(out)
    (noise_ax,) = [a for a in fig.axes if a.get_label() == plot.NOISE_LABEL]
    assert noise_ax.get_yscale() == "log" and "batch size 32" in [
        t.get_text() for t in noise_ax.get_legend().get_texts()
    ]
    # --activations: a heat map per watched layer, its rows the histogram's bins; the dead layer's share at 0
    fig = plot_instruments.activations_figure(out)
    try:
        heat = [a for a in fig.axes if a.get_label() == plot_instruments.ACTIVATIONS_LABEL]
        assert [a.get_title(loc="left") for a in heat] == [
            "0: dense (relu)",
            "1: dense_1 (relu)",
            "2: dense_2 (sigmoid)",
        ]
        assert heat[0].get_images()[0].get_array().shape == (histograms.BINS, len(hist) // 3)
        share = [a for a in fig.axes if a.get_title(loc="left") == "share at 0"][1].get_lines()[0].get_ydata()
        assert min(share) > 0.5  # biases of -5: most of dense_1's outputs are 0
    finally:
        plt.close(fig)
    r = run("plot", out, "--activations")
    assert r.exit_code == 0 and (out / "activations.png").read_bytes()[:4] == b"\x89PNG"
