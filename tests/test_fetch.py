"""dnn data fetch against a local HTTP server on 127.0.0.1 that honours Range requests."""

import hashlib
import http.server
import os
import threading
from pathlib import Path

import pytest
from typer.testing import CliRunner

from dnncli.cli.app import app
from dnncli.data import fetch as fetch_mod
from dnncli.errors import DnnError


class RangeHandler(http.server.BaseHTTPRequestHandler):
    root: Path = Path(".")
    cut_after: dict  # file -> bytes after which the connection drops (once)
    requests: list

    def log_message(self, *args):
        pass

    def do_GET(self):
        name = self.path.rsplit("/", 1)[-1]
        path = self.root / name
        type(self).requests.append((name, self.headers.get("Range")))
        if not path.exists():
            self.send_error(404)
            return
        body = path.read_bytes()
        start = 0
        rng = self.headers.get("Range")
        if rng:
            start = int(rng.split("=")[1].split("-")[0])
            if start >= len(body):
                self.send_error(416)
                return
            self.send_response(206)
            self.send_header("Content-Range", f"bytes {start}-{len(body) - 1}/{len(body)}")
        else:
            self.send_response(200)
        self.send_header("Content-Length", str(len(body) - start))
        self.end_headers()
        cut = type(self).cut_after.pop(name, None)
        self.wfile.write(body[start:cut] if cut is not None else body[start:])


@pytest.fixture
def server(tmp_path):
    root = tmp_path / "served"
    root.mkdir()
    handler = type("H", (RangeHandler,), {"root": root, "cut_after": {}, "requests": []})
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}/files/", root, handler
    httpd.shutdown()


@pytest.fixture
def fake_dataset(monkeypatch, server):
    url, root, handler = server
    files = {}
    for i, name in enumerate(["a.gz", "b.gz"]):
        body = os.urandom(300_000 + i)
        (root / name).write_bytes(body)
        files[name] = hashlib.md5(body).hexdigest()
    monkeypatch.setitem(fetch_mod.DATASETS, "tiny", {"urls": [url], "files": files})
    return url, root, handler, files


def test_fetch_downloads_and_verifies(tmp_path, fake_dataset):
    _url, root, _handler, files = fake_dataset
    seen = []
    report = fetch_mod.fetch("tiny", tmp_path / "out", progress=lambda f, d, t: seen.append((f, d, t)))
    assert report == [("a.gz", "downloaded"), ("b.gz", "downloaded")]
    for name in files:
        assert (tmp_path / "out" / name).read_bytes() == (root / name).read_bytes()
    assert seen[-1] == ("b.gz", 300_001, 300_001)
    assert fetch_mod.fetch("tiny", tmp_path / "out") == [("a.gz", "present"), ("b.gz", "present")]


def test_a_broken_download_resumes_with_a_range_request(tmp_path, fake_dataset):
    _url, root, handler, _files = fake_dataset
    handler.cut_after["a.gz"] = 100_000
    with pytest.raises(DnnError, match="closed after 100000 of 300000 bytes"):
        fetch_mod.fetch("tiny", tmp_path / "out")
    assert not (tmp_path / "out" / "a.gz").exists()  # never half a file under the final name
    assert (tmp_path / "out" / "a.gz.part").stat().st_size == 100_000
    fetch_mod.fetch("tiny", tmp_path / "out")
    assert ("a.gz", "bytes=100000-") in handler.requests
    assert (tmp_path / "out" / "a.gz").read_bytes() == (root / "a.gz").read_bytes()
    assert not list((tmp_path / "out").glob("*.part"))


def test_md5_mismatch_deletes_the_download(tmp_path, fake_dataset):
    _url, root, _handler, _files = fake_dataset
    (root / "a.gz").write_bytes(b"tampered")
    with pytest.raises(DnnError, match=r"a\.gz: md5 .* does not match the published"):
        fetch_mod.fetch("tiny", tmp_path / "out")
    assert not (tmp_path / "out" / "a.gz").exists() and not (tmp_path / "out" / "a.gz.part").exists()


def test_unreachable_server_and_unknown_dataset(tmp_path, fake_dataset):
    with pytest.raises(DnnError, match=r"cannot download a\.gz: http://127\.0\.0\.1:9/"):
        fetch_mod.fetch("tiny", tmp_path / "out", base_url="http://127.0.0.1:9/", timeout=2)
    r = CliRunner().invoke(app, ["data", "fetch", "fashion-mnsit", "--dir", str(tmp_path / "x")])
    assert r.exit_code == 2 and "Did you mean 'fashion-mnist'" in r.output


DATASETS = os.environ.get("DNN_DATASETS")


@pytest.mark.skipif(DATASETS is None, reason="DNN_DATASETS is not set")
def test_cli_fetches_the_real_files_from_a_local_server(tmp_path, server):
    url, root, _handler = server
    source = Path(DATASETS) / "fashion-mnist"
    for name in fetch_mod.DATASETS["fashion-mnist"]["files"]:
        assert (source / name).exists(), f"{source / name} is missing although DNN_DATASETS is set"
        os.symlink(source / name, root / name)
    r = CliRunner().invoke(app, ["data", "fetch", "fashion-mnist", "--dir", str(tmp_path / "fm"), "--url", url])
    assert r.exit_code == 0, r.output
    assert r.output.count("downloaded, md5 verified") == 4
    for name, md5 in fetch_mod.DATASETS["fashion-mnist"]["files"].items():
        assert fetch_mod.md5sum(tmp_path / "fm" / name) == md5
