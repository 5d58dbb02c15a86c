"""Data made to hurt (issue 21, the data part): each bad input is exit 2 and one line naming the file, the row,
the column or the key at fault, with what to do; never a traceback, never a result that is silently wrong.

CSV rows are named by their file line (1-based, the header line counted), as ``file.csv:22:``.
"""

import gzip
import hashlib
import http.server
import io
import json
import threading
import time
import zipfile

import numpy as np
import pytest
import yaml
from typer.testing import CliRunner

from dnncli import data
from dnncli.cli.app import app
from dnncli.data import arrays as arrays_mod
from dnncli.data import fetch as fetch_mod
from dnncli.errors import DnnError


def run(*args):
    return CliRunner().invoke(app, [str(a) for a in args])


def refused(r, *named):
    """Exit 2, one line, no traceback, and every one of ``named`` in it."""
    assert r.exit_code == 2, r.output
    assert "Traceback" not in r.output
    lines = [line for line in r.output.strip().splitlines() if not line.startswith("warning:")]
    assert len(lines) == 1 and lines[0].startswith("error: "), r.output
    for name in named:
        assert str(name) in lines[0], (name, lines[0])
    return lines[0]


def write_config(tmp_path, data_spec, input_shape=(2,), units=1, activation=None, loss="mse", name="c", **top):
    layer = {"type": "dense", "units": units}
    if activation:
        layer["activation"] = activation
    cfg = {
        "name": name,
        "data": data_spec,
        "model": {"input_shape": list(input_shape), "layers": [layer]},
        "loss": loss,
        "training": {"epochs": 1, "batch_size": 8},
        **top,
    }
    path = tmp_path / f"{name}.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return path


def table(tmp_path, last_row, name="t.csv", rows=20):
    """A CSV of ``rows`` good rows (lines 2..rows+1), then ``last_row`` on line rows+2."""
    good = "".join(f"{i},{i * 2},{i * 0.5}\n" for i in range(rows))
    path = tmp_path / name
    path.write_text("a,b,label\n" + good + last_row + "\n")
    return path


def csv_regression(tmp_path, path, **extra):
    return write_config(tmp_path, {"source": "csv", "path": str(path), "target": "label", **extra})


# 1. regression targets ------------------------------------------------------------------------------------------
def test_a_non_numeric_regression_target_names_the_line_and_column(tmp_path):
    f = table(tmp_path, "3,4,oops")
    line = refused(
        run("train", csv_regression(tmp_path, f), "--out", tmp_path / "run"), "t.csv:22", "'label'", "'oops'"
    )
    assert "not a number" in line and "empty split" not in line
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize("cell", ["inf", "-Infinity", "1e400"])
def test_a_non_finite_regression_target_is_named_not_an_empty_split(tmp_path, cell):
    f = table(tmp_path, f"3,4,{cell}")
    line = refused(run("train", csv_regression(tmp_path, f), "--out", tmp_path / "run"), "t.csv:22", "'label'")
    assert "not finite" in line and "empty split" not in line


def test_a_missing_regression_target_names_the_line(tmp_path):
    f = table(tmp_path, "3,4,")
    refused(run("train", csv_regression(tmp_path, f), "--out", tmp_path / "run"), "t.csv:22", "'label'", "missing")


def test_regression_targets_of_2_63_and_more_are_floats_never_int64(tmp_path):
    big = [10**19 + i * 10**17 for i in range(40)]  # integers past int64's 9.2e18
    f = tmp_path / "big.csv"
    f.write_text("a,b,label\n" + "".join(f"{i},{i % 3},{v}\n" for i, v in enumerate(big)))
    spec = data.resolve_spec({"source": "csv", "path": str(f), "target": "label", "test_split": 0})
    ds = data.build_source(spec).load(0, regression=True)
    assert ds.y_train.dtype == np.float64 and ds.y_train.tolist() == [float(v) for v in big]
    cfg = csv_regression(tmp_path, f, target_scale="standardize", scale="standardize")
    assert run("train", cfg, "--out", tmp_path / "run", "--quiet").exit_code == 0
    (tmp_path / "new.csv").write_text("a,b\n3,0\n30,2\n")
    r = run("predict", tmp_path / "run", tmp_path / "new.csv")
    assert r.exit_code == 0, r.output
    values = [float(v) for v in r.stdout.split()[1:]]
    assert len(values) == 2 and all(5e18 < v < 2e19 for v in values)  # not -9.2e18 from an int64 overflow
    # a classifier is not handed such a "label" either: one line, with the likely fix
    line = refused(
        run(
            "train",
            write_config(
                tmp_path,
                {"source": "csv", "path": str(f), "target": "label"},
                activation="sigmoid",
                loss="binary_crossentropy",
            ),
            "--out",
            tmp_path / "run2",
        ),
        "big.csv:2",
        "'label'",
    )
    assert "too large to be a class label" in line and "regression loss" in line


def test_npz_regression_targets_must_be_finite_numbers(tmp_path):
    x = np.random.default_rng(0).normal(size=(30, 2))
    y = x.sum(axis=1)
    y[7] = np.inf
    np.savez(tmp_path / "d.npz", x=x, y=y)
    cfg = write_config(tmp_path, {"source": "npz", "path": str(tmp_path / "d.npz")})
    refused(run("train", cfg, "--out", tmp_path / "run"), "d.npz", "sample 7 (from 0)", "is inf", "must be finite")
    np.savez(tmp_path / "s.npz", x=x, y=np.array(["1_5"] * 30))
    cfg = write_config(tmp_path, {"source": "npz", "path": str(tmp_path / "s.npz")})
    refused(run("train", cfg, "--out", tmp_path / "run"), "s.npz", "must be numbers", "'1_5'")


# 2. no 1_5 as 15 -------------------------------------------------------------------------------------------------
def test_an_underscore_number_is_refused_in_features_targets_and_predict_inputs(tmp_path):
    f = table(tmp_path, "3,1_5,2")
    line = refused(run("train", csv_regression(tmp_path, f), "--out", tmp_path / "run"), "t.csv:22", "'b'", "'1_5'")
    assert "not a number" in line and "categorical" not in line
    f = table(tmp_path, "3,4,1_5", name="u.csv")
    refused(run("train", csv_regression(tmp_path, f), "--out", tmp_path / "run"), "u.csv:22", "'label'", "'1_5'")
    f = table(tmp_path, "3,١٢,2", name="v.csv")  # Arabic-Indic digits: float() reads 12
    refused(run("train", csv_regression(tmp_path, f), "--out", tmp_path / "run"), "v.csv:22", "'b'", "not a number")
    # predict, on a run whose inputs are not a table
    np.savez(tmp_path / "d.npz", x=np.random.default_rng(0).normal(size=(30, 2)), y=np.arange(30.0))
    assert (
        run(
            "train",
            write_config(tmp_path, {"source": "npz", "path": str(tmp_path / "d.npz")}),
            "--out",
            tmp_path / "npz_run",
            "--quiet",
        ).exit_code
        == 0
    )
    (tmp_path / "p.csv").write_text("1,2\n3,1_5\n")
    refused(run("predict", tmp_path / "npz_run", tmp_path / "p.csv"), "p.csv:2", "'1_5'")


# 3. float32's range; minmax of tiny columns ----------------------------------------------------------------------
def test_a_feature_past_float32_names_row_column_and_what_to_do(tmp_path):
    f = table(tmp_path, "3,1e300,2")
    line = refused(run("train", csv_regression(tmp_path, f), "--out", tmp_path / "run"), "t.csv:22", "'b'")
    assert "overflows float32 (max ~3.4e38)" in line and "rescale the column" in line and " is inf" not in line
    # float64 holds it: not refused for its size
    spec = {"source": "csv", "path": str(f), "target": "label", "scale": 1e300}
    assert (
        run("train", write_config(tmp_path, spec, dtype="float64"), "--out", tmp_path / "r64", "--quiet").exit_code == 0
    )
    x = np.random.default_rng(0).normal(size=(30, 2))
    x[12, 1] = -1e300
    np.savez(tmp_path / "d.npz", x=x, y=x[:, 0])
    line = refused(
        run(
            "train",
            write_config(tmp_path, {"source": "npz", "path": str(tmp_path / "d.npz")}),
            "--out",
            tmp_path / "run",
        ),
        "d.npz",
        "sample 12, feature 1",
    )
    assert "overflows float32" in line


def test_a_regression_target_past_float32_names_its_line_or_sample(tmp_path):
    f = table(tmp_path, "3,4,-1e300")
    line = refused(run("train", csv_regression(tmp_path, f), "--out", tmp_path / "run"), "t.csv:22", "'label'")
    assert "-1e+300, which overflows float32" in line and "target_scale" in line
    x = np.random.default_rng(0).normal(size=(30, 2))
    y = x[:, 0].copy()
    y[4] = 1e300
    np.savez(tmp_path / "d.npz", x=x, y=y)
    cfg = write_config(tmp_path, {"source": "npz", "path": str(tmp_path / "d.npz")})
    refused(run("train", cfg, "--out", tmp_path / "run"), "d.npz", "sample 4 (from 0)", "overflows float32")
    # divided by a number, the targets fit: trained, not refused
    cfg = write_config(tmp_path, {"source": "npz", "path": str(tmp_path / "d.npz"), "target_scale": 1e300})
    assert run("train", cfg, "--out", tmp_path / "run", "--quiet").exit_code == 0


def test_minmax_of_subnormal_or_constant_columns_gives_finite_values(tmp_path):
    rng = np.random.default_rng(0)
    x = np.stack(
        [rng.normal(size=60), rng.uniform(1, 2, 60) * 1e-310, np.full(60, 5.0), rng.uniform(1, 2, 60) * 1e-39], axis=1
    )
    prep = data.Preprocessor.fit("minmax", x)
    for dtype in (np.float32, np.float64):
        assert np.isfinite(prep.transform(x, dtype)).all()
    assert prep.scale[1] == prep.scale[2] == prep.scale[3] == 1.0  # like a constant column, not 0/0
    np.savez(tmp_path / "d.npz", x=x, y=(x[:, 0] > 0).astype(np.int64))
    spec = {"source": "npz", "path": str(tmp_path / "d.npz"), "scale": "minmax"}
    cfg = write_config(tmp_path, spec, input_shape=(4,), activation="sigmoid", loss="binary_crossentropy")
    r = run("train", cfg, "--out", tmp_path / "run", "--quiet")
    assert r.exit_code == 0, r.output
    history = (tmp_path / "run" / "history.csv").read_text().splitlines()
    head, last = history[0].split(","), history[-1].split(",")
    assert np.isfinite(float(last[head.index("loss")]))


# 4. sizes before allocation --------------------------------------------------------------------------------------
def npy_header(shape, dtype="<f8") -> bytes:
    buf = io.BytesIO()
    np.lib.format.write_array_header_1_0(buf, {"descr": dtype, "fortran_order": False, "shape": shape})
    return buf.getvalue()


def test_an_npy_header_claiming_a_huge_shape_is_refused_before_reading(tmp_path):
    (tmp_path / "x.npy").write_bytes(npy_header((10**12, 2)) + bytes(64))
    np.save(tmp_path / "y.npy", np.zeros(4))
    cfg = write_config(
        tmp_path, {"source": "npy", "x_path": str(tmp_path / "x.npy"), "y_path": str(tmp_path / "y.npy")}
    )
    start = time.monotonic()
    line = refused(run("train", cfg, "--out", tmp_path / "run"), "x.npy", "[1000000000000, 2]", "TiB")
    assert "more than this machine's memory" in line and time.monotonic() - start < 10
    # a shape that fits, in a file too short for it: truncated, said so (not a numpy reshape error)
    (tmp_path / "x.npy").write_bytes(npy_header((1000, 2)) + bytes(64))
    refused(run("train", cfg, "--out", tmp_path / "run"), "x.npy", "truncated")
    r = run("predict", tmp_path / "nowhere", tmp_path / "x.npy")
    assert r.exit_code == 2


def test_an_npz_member_that_declares_or_inflates_past_memory_is_refused(tmp_path, monkeypatch):
    with zipfile.ZipFile(tmp_path / "huge.npz", "w") as zf:
        zf.writestr("x.npy", npy_header((10**12, 4)) + bytes(32))
        zf.writestr("y.npy", npy_header((10**12,)) + bytes(32))
    cfg = write_config(tmp_path, {"source": "npz", "path": str(tmp_path / "huge.npz")})
    refused(run("train", cfg, "--out", tmp_path / "run"), "huge.npz", "'x'", "more than this machine's memory")
    # a real zip bomb in small: 16 MiB of zeros deflate to a few KiB; with 4 MiB of "memory" it is refused unread
    buf = io.BytesIO()
    np.save(buf, np.zeros((1 << 21, 1)))
    with zipfile.ZipFile(tmp_path / "bomb.npz", "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("x.npy", buf.getvalue())
        zf.writestr("y.npy", npy_header((1 << 21,), "<i8") + bytes(8 << 21))
    assert (tmp_path / "bomb.npz").stat().st_size < 200_000
    monkeypatch.setattr(arrays_mod, "memory_bytes", lambda: 4 << 20)
    src = data.build_source(data.resolve_spec({"source": "npz", "path": str(tmp_path / "bomb.npz")}))
    with pytest.raises(
        DnnError, match=r"bomb\.npz: array 'x': .*\[2097152, 1\] of float64, which needs 16\.0 MiB, more "
    ):
        src.load(0)
    monkeypatch.setattr(arrays_mod, "memory_bytes", lambda: 20 << 20)  # each fits, both do not
    with pytest.raises(
        DnnError, match=r"bomb\.npz: arrays 'x', 'y' together needs 32\.0 MiB, more than .* \(20\.0 MiB\)"
    ):
        src.load(0)
    # and eval --data reads an NPZ the same way
    with pytest.raises(DnnError, match=r"--data .*bomb\.npz"):
        arrays_mod.load_npz(tmp_path / "bomb.npz", ("x", "y"), where="--data ")


@pytest.mark.parametrize("gz", [False, True])
def test_idx_dimensions_that_overflow_or_exceed_memory_are_refused(tmp_path, gz):
    d = tmp_path / "d"
    d.mkdir()
    # 65536^4 = 2^64 bytes: int64 arithmetic wraps this to 0 and would accept a header-only file
    header = bytes([0, 0, 0x08, 4]) + (65536).to_bytes(4, "big") * 4
    good = np.arange(10, dtype=np.uint8)
    labels = bytes([0, 0, 0x08, 1]) + (10).to_bytes(4, "big") + good.tobytes()
    for name, body in (("train-images-idx3-ubyte", header), ("train-labels-idx1-ubyte", labels)):
        (d / (name + (".gz" if gz else ""))).write_bytes(gzip.compress(body) if gz else body)
    for name in ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"):
        (d / name).write_bytes(labels)
    cfg = write_config(
        tmp_path,
        {"source": "idx", "path": str(d)},
        input_shape=(4,),
        units=3,
        activation="softmax",
        loss="sparse_categorical_crossentropy",
    )
    line = refused(
        run("train", cfg, "--out", tmp_path / "run"), "train-images-idx3-ubyte", "[65536, 65536, 65536, 65536]"
    )
    assert "more than this machine's memory" in line


def test_synthetic_n_samples_beyond_memory_is_refused_before_generating(tmp_path):
    spec = {"source": "synthetic", "generator": "blobs", "n_samples": 2_000_000_000, "n_features": 100_000}
    cfg = write_config(tmp_path, spec, units=2, activation="softmax", loss="sparse_categorical_crossentropy")
    start = time.monotonic()
    refused(
        run("train", cfg, "--out", tmp_path / "run"),
        "c.yaml",
        "data.n_samples",
        "2000000000 samples of 100000",
        "more than this machine's memory",
    )
    assert time.monotonic() - start < 10


# 5. dnn data fetch -----------------------------------------------------------------------------------------------
class Endless(http.server.BaseHTTPRequestHandler):
    """Streams zeros and never ends (no Content-Length), or announces a Content-Length of ``announce``; with
    ``trickle``, one byte every ``trickle`` seconds (each well within any socket timeout)."""

    announce: int | None = None
    trickle: float | None = None

    def log_message(self, *args):
        pass

    def do_GET(self):
        self.send_response(200)
        if self.announce is not None:
            self.send_header("Content-Length", str(self.announce))
        self.end_headers()
        try:
            while True:
                if self.trickle is not None:
                    time.sleep(self.trickle)
                    self.wfile.write(b"\0")
                    self.wfile.flush()
                else:
                    self.wfile.write(bytes(1 << 16))
        except OSError:  # the client hung up: what it should do
            pass


@pytest.fixture
def endless(monkeypatch):
    servers = []

    def start(announce=None, trickle=None):
        handler = type("H", (Endless,), {"announce": announce, "trickle": trickle})
        httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
        httpd.daemon_threads = True
        threading.Thread(target=httpd.serve_forever, daemon=True).start()
        servers.append(httpd)
        url = f"http://127.0.0.1:{httpd.server_address[1]}/"
        spec = {"urls": [url], "files": {"a.gz": "0" * 32}, "sizes": {"a.gz": 100_000}}
        monkeypatch.setitem(fetch_mod.DATASETS, "tiny", spec)
        return url

    yield start
    for httpd in servers:
        httpd.shutdown()


def test_fetch_stops_a_server_that_never_ends_at_the_size_bound(tmp_path, endless):
    endless()
    start = time.monotonic()
    with pytest.raises(DnnError, match=r"cannot download a\.gz: .*sent more than \d+ bytes.*deleted") as err:
        fetch_mod.fetch("tiny", tmp_path / "out", timeout=5)
    assert time.monotonic() - start < 20 and "\n" not in str(err.value) and "resume" not in str(err.value)
    assert not list((tmp_path / "out").iterdir())  # no .part left to resume from
    assert fetch_mod.size_bound(100_000) < 200_000


def test_fetch_refuses_an_announced_size_past_the_bound(tmp_path, endless):
    endless(announce=10**12)
    with pytest.raises(DnnError, match=r"announces 1000000000000 bytes; this file is at most \d+"):
        fetch_mod.fetch("tiny", tmp_path / "out", timeout=5)
    assert not list((tmp_path / "out").iterdir())


def test_fetch_stops_a_server_that_trickles_under_its_timeout_and_keeps_what_came(tmp_path, endless):
    endless(announce=100_000, trickle=0.02)  # a byte every 20 ms: never 1 s without one, and 50 bytes/s
    start = time.monotonic()
    with pytest.raises(
        DnnError, match=r"cannot download a\.gz: .*the server sent \d+ bytes in 1 s \(under 1 KiB/s\)"
    ) as err:
        fetch_mod.fetch("tiny", tmp_path / "out", timeout=1)
    assert time.monotonic() - start < 10
    assert "\n" not in str(err.value) and str(err.value).endswith("Run the command again to resume.")
    part = tmp_path / "out" / "a.gz.part"
    assert part.exists() and 0 < part.stat().st_size < 1000  # kept: the next run resumes from it


class NoRange(http.server.BaseHTTPRequestHandler):
    """Serves ``payload`` whole, whatever Range is asked (a 200, never a 206); the first answer is cut after
    ``cut`` bytes (a connection lost); with ``chunked``, in chunked encoding, the cut inside a chunk."""

    payload = b""
    cut: int | None = None
    chunked = False
    served = 0

    def log_message(self, *args):
        pass

    def do_GET(self):
        cls = type(self)
        cut = cls.cut if cls.served == 0 else None
        cls.served += 1
        body = self.payload if cut is None else self.payload[:cut]
        self.send_response(200)
        if self.chunked:
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            size = len(self.payload) if cut is not None else len(body)
            self.wfile.write(f"{size:x}\r\n".encode() + body + (b"" if cut is not None else b"\r\n0\r\n\r\n"))
        else:
            self.send_header("Content-Length", str(len(self.payload)))
            self.end_headers()
            self.wfile.write(body)
        self.wfile.flush()
        self.close_connection = True


@pytest.fixture
def norange(monkeypatch):
    servers = []

    def start(payload, cut=None, chunked=False):
        handler = type("H", (NoRange,), {"payload": payload, "cut": cut, "chunked": chunked, "served": 0})
        httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
        httpd.daemon_threads = True
        threading.Thread(target=httpd.serve_forever, daemon=True).start()
        servers.append(httpd)
        url = f"http://127.0.0.1:{httpd.server_address[1]}/"
        spec = {"urls": [url], "files": {"a.gz": hashlib.md5(payload).hexdigest()}, "sizes": {"a.gz": len(payload)}}
        monkeypatch.setitem(fetch_mod.DATASETS, "tiny", spec)

    yield start
    for httpd in servers:
        httpd.shutdown()


def test_a_resume_the_server_ignores_reads_past_what_is_kept_and_completes(tmp_path, norange):
    payload = bytes(range(256)) * 200
    norange(payload, cut=20_000)
    with pytest.raises(DnnError, match=r"connection closed after 20000 of 51200 bytes; run the command again"):
        fetch_mod.fetch("tiny", tmp_path / "out", timeout=5)
    assert (tmp_path / "out" / "a.gz.part").read_bytes() == payload[:20_000]
    assert fetch_mod.fetch("tiny", tmp_path / "out", timeout=5) == [("a.gz", "downloaded")]  # a 200, not a 206
    assert (tmp_path / "out" / "a.gz").read_bytes() == payload


def test_a_chunk_cut_short_is_one_line_and_what_came_is_kept(tmp_path, norange):
    payload = bytes(range(256)) * 200
    norange(payload, cut=5_000, chunked=True)
    with pytest.raises(DnnError, match=r"cannot download a\.gz: .*IncompleteRead.*Run the command again") as err:
        fetch_mod.fetch("tiny", tmp_path / "out", timeout=5)
    assert "\n" not in str(err.value)
    assert (tmp_path / "out" / "a.gz.part").read_bytes() == payload[:5_000]
    assert fetch_mod.fetch("tiny", tmp_path / "out", timeout=5) == [("a.gz", "downloaded")]


class Slowloris(http.server.BaseHTTPRequestHandler):
    """Trickles, a byte every 20 ms and never done: the status line and headers (``where="headers"``), or, after
    the headers, a chunk's size line (``where="chunk-size"``)."""

    where = "headers"

    def log_message(self, *args):
        pass

    def do_GET(self):
        try:
            if self.where == "chunk-size":
                self.wfile.write(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n1;")
            else:
                self.wfile.write(b"HTTP/1.1 200 OK\r\n")
            while True:
                self.wfile.write(b"X-Slow: x\r\n"[:1] if self.where == "headers" else b"x")
                self.wfile.flush()
                time.sleep(0.02)
        except OSError:
            pass


@pytest.mark.parametrize("where", ["headers", "chunk-size"])
def test_fetch_stops_a_server_that_trickles_its_headers_or_a_chunk_line(tmp_path, monkeypatch, where):
    # no read of the file returns while these trickle: a watchdog over the connection stops them
    handler = type("H", (Slowloris,), {"where": where})
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    httpd.daemon_threads = True
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{httpd.server_address[1]}/"
    monkeypatch.setitem(fetch_mod.DATASETS, "tiny", {"urls": [url], "files": {"a.gz": "0" * 32}, "sizes": {}})
    start = time.monotonic()
    try:
        with pytest.raises(DnnError, match=r"cannot download a\.gz: .*the server sent \d+ bytes in 1 s \(under 1 KiB"):
            fetch_mod.fetch("tiny", tmp_path / "out", timeout=1)
    finally:
        httpd.shutdown()
    assert time.monotonic() - start < 5


def test_the_published_sizes_bound_the_real_datasets():
    for spec in fetch_mod.DATASETS.values():
        assert set(spec["sizes"]) == set(spec["files"])


def test_fetch_dir_that_is_a_file_is_one_line(tmp_path):
    (tmp_path / "file").write_text("not a directory")
    refused(run("data", "fetch", "mnist", "--dir", tmp_path / "file"), "file", "not a directory")
    refused(run("data", "fetch", "mnist", "--dir", tmp_path / "file" / "sub"), "file")


# 6. dnn eval --data ----------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def int_run(tmp_path_factory):
    """A run trained on integer labels 0, 1, 2 from a CSV (so eval --data also takes a CSV)."""
    tmp = tmp_path_factory.mktemp("int_run")
    rng = np.random.default_rng(0)
    x = rng.normal(size=(90, 2))
    (tmp / "t.csv").write_text("u,v,label\n" + "".join(f"{a:.4f},{b:.4f},{i % 3}\n" for i, (a, b) in enumerate(x)))
    cfg = write_config(
        tmp,
        {"source": "csv", "path": str(tmp / "t.csv"), "target": "label"},
        units=3,
        activation="softmax",
        loss="sparse_categorical_crossentropy",
        metrics=["accuracy"],
    )
    assert run("train", cfg, "--out", tmp / "run", "--quiet").exit_code == 0
    return tmp / "run", x


def test_eval_refuses_labels_the_run_never_saw(tmp_path, int_run):
    run_dir, x = int_run
    (tmp_path / "s.csv").write_text("u,v,label\n1,2,cat\n3,4,dog\n5,6,zebra\n")
    line = refused(run("eval", run_dir, "--data", tmp_path / "s.csv"), "s.csv", "cat, dog, zebra", "0..2")
    assert "never saw" in line
    np.savez(tmp_path / "s.npz", x=x[:3], y=np.array(["cat", "dog", "zebra"]))
    refused(run("eval", run_dir, "--data", tmp_path / "s.npz"), "s.npz", "cat, dog, zebra", "0..2")
    np.savez(tmp_path / "o.npz", x=x[:4], y=np.array([0, 1, 7, -1]))
    refused(run("eval", run_dir, "--data", tmp_path / "o.npz"), "o.npz", "-1, 7", "never saw")
    np.savez(tmp_path / "ok.npz", x=x[:4], y=np.array([0, 1, 2, 1]))
    r = run("eval", run_dir, "--data", tmp_path / "ok.npz", "--json")
    assert r.exit_code == 0 and json.loads(r.stdout)["samples"] == 4


def test_eval_maps_class_names_and_refuses_unseen_ones(tmp_path):
    rng = np.random.default_rng(1)
    x = rng.normal(size=(60, 2))
    names = np.array(["ant", "bee", "cow"])
    (tmp_path / "t.csv").write_text("u,v,label\n" + "".join(f"{a},{b},{names[i % 3]}\n" for i, (a, b) in enumerate(x)))
    cfg = write_config(
        tmp_path,
        {"source": "csv", "path": str(tmp_path / "t.csv"), "target": "label"},
        units=3,
        activation="softmax",
        loss="sparse_categorical_crossentropy",
    )
    assert run("train", cfg, "--out", tmp_path / "run", "--quiet").exit_code == 0
    np.savez(tmp_path / "n.npz", x=x[:3], y=np.array(["ant", "bee", "cow"]))
    r = run("eval", tmp_path / "run", "--data", tmp_path / "n.npz", "--json")
    assert r.exit_code == 0, r.output
    assert [row["support"] for row in json.loads(r.stdout)["per_class"]] == [1, 1, 1]
    np.savez(tmp_path / "z.npz", x=x[:3], y=np.array(["ant", "bee", "zebra"]))
    refused(run("eval", tmp_path / "run", "--data", tmp_path / "z.npz"), "z.npz", "zebra", "ant, bee, cow")


@pytest.mark.parametrize(
    "arrays,named",
    [
        ({"x": np.zeros((3, 2)), "y": np.array([0, 1])}, ["3 inputs in 'x' but 2 labels in 'y'"]),
        ({"x": np.array(3.0), "y": np.array([1])}, ["'x'", "0-d"]),
        ({"x": np.zeros((2, 2)), "y": np.array(1)}, ["'y'", "0-d"]),
        ({"x": np.zeros((0, 2)), "y": np.zeros(0, np.int64)}, ["no samples"]),
        ({"x": np.zeros((2, 2))}, ["no array 'y'"]),
    ],
    ids=["lengths", "0-d x", "0-d y", "0 samples", "no y"],
)
def test_eval_data_of_the_wrong_shape_is_one_line(tmp_path, int_run, arrays, named):
    run_dir, _x = int_run
    np.savez(tmp_path / "d.npz", **arrays)
    refused(run("eval", run_dir, "--data", tmp_path / "d.npz"), "--data", "d.npz", *named)


# 7. class_names ----------------------------------------------------------------------------------------------------
def test_duplicate_class_names_are_refused(tmp_path):
    (tmp_path / "t.csv").write_text("a,b,label\n1,2,0\n3,4,1\n5,6,2\n")
    spec = {"source": "csv", "path": str(tmp_path / "t.csv"), "target": "label", "class_names": ["cat", "dog", "cat"]}
    cfg = write_config(tmp_path, spec, units=3, activation="softmax", loss="sparse_categorical_crossentropy")
    line = refused(run("validate", cfg), "class_names", "'cat' twice")
    assert "c.yaml" in line


# 8. one value per sample -------------------------------------------------------------------------------------------
def test_one_dimensional_inputs_read_as_one_feature_or_get_a_valid_fix(tmp_path):
    rng = np.random.default_rng(0)
    x = rng.normal(size=50)
    np.savez(tmp_path / "d.npz", x=x, y=2 * x)
    spec = {"source": "npz", "path": str(tmp_path / "d.npz"), "scale": "standardize"}
    assert (
        run("train", write_config(tmp_path, spec, input_shape=(1,)), "--out", tmp_path / "run", "--quiet").exit_code
        == 0
    )
    np.save(tmp_path / "p.npy", np.array([0.5, -1.0, 2.0]))
    r = run("predict", tmp_path / "run", tmp_path / "p.npy")
    assert r.exit_code == 0 and len(r.stdout.splitlines()) == 4  # three samples of one feature
    line = refused(
        run("train", write_config(tmp_path, spec, input_shape=(2,)), "--out", tmp_path / "r2"),
        "d.npz",
        "input_shape: [1]",
    )
    assert "input_shape: []" not in line
    # predict on a two-feature run: a 1-D array of two values is refused with both readings
    np.savez(tmp_path / "d2.npz", x=rng.normal(size=(50, 2)), y=x)
    assert (
        run(
            "train",
            write_config(tmp_path, {"source": "npz", "path": str(tmp_path / "d2.npz")}),
            "--out",
            tmp_path / "r3",
            "--quiet",
        ).exit_code
        == 0
    )
    np.save(tmp_path / "two.npy", np.array([0.5, 1.0]))
    line = refused(run("predict", tmp_path / "r3", tmp_path / "two.npy"), "two.npy", "shape (1, 2)", "input_shape: [1]")
    assert "input_shape: []" not in line


# 9. predict on a one-row CSV -----------------------------------------------------------------------------------
def test_predict_reads_a_headerless_one_row_csv(tmp_path, int_run):
    run_dir, _x = int_run
    (tmp_path / "one.csv").write_text("0.5,-1.5\n")
    r = run("predict", run_dir, tmp_path / "one.csv")
    assert r.exit_code == 0, r.output
    assert r.stdout.splitlines()[0] == "class,p_0,p_1,p_2" and len(r.stdout.splitlines()) == 2
    (tmp_path / "many.csv").write_text("0.5,-1.5\n1,2\n")  # headerless rows: the first is not lost as a header
    r = run("predict", run_dir, tmp_path / "many.csv")
    assert r.exit_code == 0 and len(r.stdout.splitlines()) == 3
    (tmp_path / "with_header.csv").write_text("u,v\n0.5,-1.5\n")
    assert run("predict", run_dir, tmp_path / "with_header.csv").stdout == r.stdout.splitlines()[0] + "\n" + (
        r.stdout.splitlines()[1] + "\n"
    )
    (tmp_path / "wide.csv").write_text("0.5,-1.5,3\n")
    line = refused(run("predict", run_dir, tmp_path / "wide.csv"), "wide.csv", "3 values", "u, v")
    assert "no data rows" not in line
    (tmp_path / "head.csv").write_text("u,v\n")
    refused(run("predict", run_dir, tmp_path / "head.csv"), "head.csv", "only a header line")


# beyond the report -------------------------------------------------------------------------------------------------
def test_a_csv_with_a_nul_byte_names_its_line(tmp_path):
    f = tmp_path / "t.csv"
    f.write_bytes(b"a,b,label\n1,2,0\n3,4\x00,1\n")
    refused(run("train", csv_regression(tmp_path, f), "--out", tmp_path / "run"), "t.csv:3", "NUL")


def test_csv_lines_are_file_lines_past_a_quoted_newline(tmp_path):
    f = tmp_path / "t.csv"
    f.write_text('a,b,label\n1,2,"0\n"\n' + "".join(f"{i},{i},{i}\n" for i in range(10)) + "1,x,1\n")
    refused(run("train", csv_regression(tmp_path, f), "--out", tmp_path / "run"), "t.csv:14", "'b'", "'x'")


def test_a_ragged_row_and_a_header_only_file(tmp_path):
    f = table(tmp_path, "3,4")
    refused(run("train", csv_regression(tmp_path, f), "--out", tmp_path / "run"), "t.csv:22", "2 values", "3 columns")
    (tmp_path / "h.csv").write_text("a,b,label\n")
    refused(
        run("train", csv_regression(tmp_path, tmp_path / "h.csv"), "--out", tmp_path / "run"), "h.csv", "no data rows"
    )


def test_an_infinite_feature_names_the_line(tmp_path):
    f = table(tmp_path, "3,-inf,1")
    refused(run("train", csv_regression(tmp_path, f), "--out", tmp_path / "run"), "t.csv:22", "'b'", "finite")


def test_a_label_column_of_one_class_is_warned_about(tmp_path):
    (tmp_path / "t.csv").write_text("a,b,label\n" + "".join(f"{i},{i % 5},yes\n" for i in range(30)))
    cfg = write_config(
        tmp_path,
        {"source": "csv", "path": str(tmp_path / "t.csv"), "target": "label"},
        activation="sigmoid",
        loss="binary_crossentropy",
    )
    r = run("train", cfg, "--out", tmp_path / "run", "--quiet")
    assert (
        r.exit_code == 0 and "warning: data (" in r.output and "every training label is 'yes' (one class)" in r.output
    )


def test_predict_csv_that_is_not_utf8_or_a_directory_is_one_line(tmp_path, int_run):
    run_dir, _x = int_run
    (tmp_path / "l.csv").write_bytes("u,v\n1,2\n\xe9,3\n".encode("latin-1"))
    refused(run("predict", run_dir, tmp_path / "l.csv"), "l.csv", "cannot read as CSV")
    (tmp_path / "dir.csv").mkdir()
    refused(run("predict", run_dir, tmp_path / "dir.csv"), "dir.csv")


def test_a_csv_too_large_to_parse_in_memory_is_refused_unread(tmp_path, monkeypatch):
    f = table(tmp_path, "3,4,5", rows=200)
    monkeypatch.setattr(arrays_mod, "memory_bytes", lambda: 4 << 10)
    line = refused(run("train", csv_regression(tmp_path, f), "--out", tmp_path / "run"), "t.csv", "of CSV text")
    assert "more than this machine's memory (4.0 KiB)" in line
