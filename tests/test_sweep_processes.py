"""dnn sweep in processes of its own: a driver killed with SIGKILL, and a cluster joined by address.

Apart from tests/test_sweep.py: `ray stop` ends every Ray process on the machine, the drivers among them, so no
test here may hold a Ray session in the test process.
"""

import contextlib
import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

pytest.importorskip("ray")
from tests.test_sweep import BASE, make, strict


def test_resume_after_the_driver_is_killed_runs_only_the_unfinished_trials(tmp_path):
    # trials of a second or two, so that the driver is killed with some finished and some not
    base = BASE | {"data": BASE["data"] | {"n_samples": 3000}, "training": BASE["training"] | {"epochs": 10}}
    path = make(tmp_path, {"parameters": {"optimizer.learning_rate": {"values": [0.001, 0.003, 0.01, 0.03]}}}, base)
    out = tmp_path / "out"
    cmd = [sys.executable, "-m", "dnncli", "sweep", str(path), "--out", str(out), "--workers", "1", "--quiet"]
    driver = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    deadline = time.time() + 120
    while time.time() < deadline and len(list(out.glob("trials/*/trial.json"))) < 2:
        time.sleep(0.02)
    os.killpg(driver.pid, signal.SIGKILL)  # the driver and the Ray processes it started
    driver.wait()
    finished = {p.parent.name: p.stat().st_mtime_ns for p in out.glob("trials/*/trial.json")}
    trained = {name: (out / "trials" / name / "model.npz").stat().st_mtime_ns for name in finished}
    assert 2 <= len(finished) < 4
    r = subprocess.run(
        [sys.executable, "-m", "dnncli", "sweep", "--resume", str(out), "--json"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert r.returncode == 0, r.stderr
    report = strict(r.stdout)
    assert len(report["trials"]) == 4 and all(t["status"] == "completed" for t in report["trials"])
    for trial, mtime in finished.items():  # completed trials were not run again
        assert (out / "trials" / trial / "trial.json").stat().st_mtime_ns == mtime
        assert (out / "trials" / trial / "model.npz").stat().st_mtime_ns == trained[trial]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _user_env(home: Path) -> dict:
    """The environment of a user on a machine of the cluster: their HOME, no Ray authentication settings."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("RAY_AUTH")}
    return env | {"HOME": str(home), "RAY_AIR_NEW_OUTPUT": "0"}


@pytest.fixture(scope="module")
def head(tmp_path_factory):
    """A real head started as Ray's documentation says, with Ray's default authentication: on, because a token is
    in Ray's default file (as `ray get-auth-token --generate`, or any earlier local ray.init, leaves it)."""
    raylet = pytest.importorskip("ray._raylet")
    if not hasattr(raylet, "AuthenticationTokenLoader"):
        pytest.skip("this Ray has no token authentication")
    home = tmp_path_factory.mktemp("head-home")
    (home / ".ray").mkdir()
    (home / ".ray" / "auth_token").write_text(secrets.token_hex(32))
    with _running_head(str(Path(sys.executable).parent / "ray"), home, cpus=2) as (address, log):
        assert "Token authentication is enabled" in log  # Ray's default here: tokens on
        yield {"address": address, "home": home, "token": (home / ".ray" / "auth_token").read_text()}


@contextlib.contextmanager
def _running_head(ray_command: str, home: Path, cpus: int):
    """A head started by ``ray_command`` as a user does (``--block``: the head is the group of the process started
    here, ended by SIGKILL at the end, never `ray stop`); yields its address and its log once it runs."""
    port, temp = _free_port(), tempfile.mkdtemp(prefix="dnnray")  # short: Ray keeps unix sockets there
    log = home / "head.log"
    start = [ray_command, "start", "--head", "--port", str(port), "--num-cpus", str(cpus)]
    start += ["--node-ip-address", "127.0.0.1", "--include-dashboard", "false", "--temp-dir", temp, "--block"]
    with log.open("w") as out:
        proc = subprocess.Popen(
            start, env=_user_env(home), stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )
    try:
        deadline = time.time() + 90
        while "Ray runtime started" not in log.read_text() and proc.poll() is None and time.time() < deadline:
            time.sleep(0.1)
        assert "Ray runtime started" in log.read_text(), log.read_text()[-2000:]
        yield f"127.0.0.1:{port}", log.read_text()
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()


def test_a_sweep_joins_a_head_with_rays_default_token_authentication(tmp_path, head):
    # as a user on the head's machine runs it: the token in ~/.ray/auth_token, no RAY_AUTH_MODE
    path = make(tmp_path, {"parameters": {"optimizer.learning_rate": {"values": [0.003, 0.03]}}})
    out = tmp_path / "out"
    cmd = [sys.executable, "-m", "dnncli", "sweep", str(path), "--out", str(out), "--address", head["address"]]
    r = subprocess.run([*cmd, "--json"], capture_output=True, text=True, env=_user_env(head["home"]), timeout=300)
    assert r.returncode == 0, r.stderr
    report = strict(r.stdout)
    assert len(report["trials"]) == 2 and all(t["status"] == "completed" for t in report["trials"])
    for t in report["trials"]:  # in a worker of the cluster: the trial's one CPU, as one BLAS thread
        record = json.loads((Path(t["run_dir"]) / "trial.json").read_text())
        assert record["cpus"] == 1 and record["blas_threads"] == 1


def test_the_token_from_ray_auth_token_path_or_the_environment_is_accepted(tmp_path, head, monkeypatch):
    from dnncli.experiment.sweep.cluster import find_token, head_mode

    (tmp_path / "token").write_text(head["token"])
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setenv("RAY_AUTH_TOKEN_PATH", str(tmp_path / "token"))
    assert head_mode(head["address"], find_token()) == "token"
    monkeypatch.setenv("RAY_AUTH_TOKEN", head["token"])
    assert head_mode(head["address"], find_token()) == "token"


@pytest.mark.parametrize(
    "env, said",
    [
        ({}, "the head uses token authentication, and no token was found here"),
        ({"RAY_AUTH_TOKEN": "0" * 64}, "the head refused the token from RAY_AUTH_TOKEN"),
    ],
)
def test_a_driver_without_the_heads_token_gets_one_line_and_exit_2(tmp_path, head, monkeypatch, env, said):
    from typer.testing import CliRunner

    from dnncli.cli import app

    for key in ("RAY_AUTH_TOKEN", "RAY_AUTH_TOKEN_PATH", "RAY_AUTH_MODE"):
        monkeypatch.delenv(key, raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))  # another user, or another machine: no token of the head's
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    path = make(tmp_path, {"parameters": {"optimizer.learning_rate": {"values": [0.003]}}})
    started = time.perf_counter()
    r = CliRunner().invoke(app, ["sweep", str(path), "--out", str(tmp_path / "out"), "--address", head["address"]])
    assert r.exit_code == 2
    lines = r.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"error: --address {head['address']}: ") and said in lines[0]
    assert "ray get-auth-token" in lines[0] and head["token"] not in r.output
    assert time.perf_counter() - started < 10  # not Ray's 20 s of retries
    assert not (tmp_path / "out").exists()  # nothing left behind to refuse the next try


def test_nothing_listening_is_one_line_and_exit_2(tmp_path):
    from typer.testing import CliRunner

    from dnncli.cli import app

    address = f"127.0.0.1:{_free_port()}"
    path = make(tmp_path, {"parameters": {"optimizer.learning_rate": {"values": [0.003]}}})
    r = CliRunner().invoke(app, ["sweep", str(path), "--out", str(tmp_path / "out"), "--address", address])
    assert r.exit_code == 2
    lines = r.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"error: --address {address}: nothing is listening there")
    assert "ray start --head --port" in lines[0]


def test_a_head_of_another_ray_version_is_one_line_and_exit_2(tmp_path):
    """Against a real head of another Ray: set DNN_OTHER_RAY to that Ray's ``ray`` command (a second virtual
    environment: ``python -m venv V && V/bin/pip install ray==2.40.0``, then DNN_OTHER_RAY=V/bin/ray); skipped
    without it, as CI has one Ray."""
    import ray
    from typer.testing import CliRunner

    from dnncli.cli import app

    other = os.environ.get("DNN_OTHER_RAY")
    if not other:
        pytest.skip("DNN_OTHER_RAY (the ray command of another Ray version) is not set")
    version = subprocess.run([other, "--version"], capture_output=True, text=True, check=True).stdout.split()[-1]
    if version == ray.__version__:
        pytest.skip(f"DNN_OTHER_RAY is this Ray ({version})")
    with _running_head(other, tmp_path, cpus=1) as (address, _):
        path = make(tmp_path, {"parameters": {"optimizer.learning_rate": {"values": [0.003]}}})
        r = CliRunner().invoke(app, ["sweep", str(path), "--out", str(tmp_path / "out"), "--address", address])
    assert r.exit_code == 2
    lines = r.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"error: --address {address}: the head runs Ray {version}")
    assert f"pip install 'ray[tune]=={version}'" in lines[0]
    assert not (tmp_path / "out").exists()
