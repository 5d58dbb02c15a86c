"""dnn sweep in processes of its own: a driver killed with SIGKILL, and a cluster joined by address.

Apart from tests/test_sweep.py: `ray stop` ends every Ray process on the machine, the drivers among them, so no
test here may hold a Ray session in the test process.
"""

import os
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


def test_a_sweep_joins_a_cluster_by_address(tmp_path):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    ray_bin = Path(sys.executable).parent / "ray"
    # a head of our own on loopback; Ray's token authentication (a real cluster's business) off for it
    env = os.environ | {"RAY_AIR_NEW_OUTPUT": "0", "RAY_AUTH_MODE": "disabled"}
    start = [
        str(ray_bin),
        "start",
        "--head",
        "--port",
        str(port),
        "--num-cpus",
        "2",
        "--node-ip-address",
        "127.0.0.1",
        "--include-dashboard",
        "false",
        "--temp-dir",
        tempfile.mkdtemp(prefix="dnnray"),  # short: Ray keeps unix sockets there
    ]
    r = subprocess.run(start, capture_output=True, text=True, env=env, timeout=120)
    assert r.returncode == 0, r.stderr
    try:
        path = make(tmp_path, {"parameters": {"optimizer.learning_rate": {"values": [0.003, 0.03]}}})
        r = subprocess.run(
            [
                sys.executable,
                "-m",
                "dnncli",
                "sweep",
                str(path),
                "--out",
                str(tmp_path / "out"),
                "--address",
                f"127.0.0.1:{port}",
                "--json",
            ],
            capture_output=True,
            text=True,
            env=env,
            timeout=300,
        )
        assert r.returncode == 0, r.stderr
        report = strict(r.stdout)
        assert len(report["trials"]) == 2 and all(t["status"] == "completed" for t in report["trials"])
    finally:
        subprocess.run([str(ray_bin), "stop", "--force"], capture_output=True, env=env, timeout=120)
