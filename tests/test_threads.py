"""BLAS threads chosen at run time: the CPUs this process may use (affinity, cgroup quota), a count forced by
--threads or the config, and the adaptive choice on a fake clock."""

import json
from pathlib import Path

import numpy as np
import pytest
import yaml
from typer.testing import CliRunner

import dnncli
from dnncli.cli.app import app
from dnncli.errors import DnnError
from dnncli.experiment import config as config_mod
from dnncli.experiment.resolve import resolve
from dnncli.train import threads
from dnncli.train.threads import AdaptiveThreads, ThreadPolicy, cgroup_cpu_limit, usable_cpus
from dnncli.train.trainer import Callback, Trainer

ROOT = Path(__file__).resolve().parents[1]
TINY = {
    "name": "tiny",
    "seed": 1,
    "data": {"source": "synthetic", "generator": "moons", "n_samples": 300, "noise": 0.2},
    "model": {
        "input_shape": [2],
        "layers": [
            {"type": "dense", "units": 8, "activation": "relu"},
            {"type": "dense", "units": 2, "activation": "softmax"},
        ],
    },
    "loss": "sparse_categorical_crossentropy",
    "optimizer": {"name": "adam", "learning_rate": 0.01},
    "training": {"epochs": 2, "batch_size": 32},
}


def fake_root(tmp_path: Path, cgroup: str, files: dict) -> Path:
    (tmp_path / "proc/self").mkdir(parents=True)
    (tmp_path / "proc/self/cgroup").write_text(cgroup)
    for rel, text in files.items():
        path = tmp_path / "sys/fs/cgroup" / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return tmp_path


EIGHT = lambda pid: set(range(8))  # an affinity mask of 8 CPUs


@pytest.fixture(autouse=True)
def _auto_is_auto(monkeypatch):
    monkeypatch.delenv("DNN_THREADS", raising=False)  # conftest fixes one thread for the rest of the suite


def test_a_cgroup_v2_quota_caps_the_affinity_rounded_up(tmp_path):
    root = fake_root(tmp_path, "0::/job\n", {"job/cpu.max": "150000 100000\n"})
    assert cgroup_cpu_limit(root) == 1.5
    assert usable_cpus(root, affinity=EIGHT) == 2


def test_a_parent_cgroups_quota_counts_and_the_smallest_wins(tmp_path):
    files = {"kube/cpu.max": "100000 100000\n", "kube/pod/cpu.max": "max 100000\n"}
    root = fake_root(tmp_path, "0::/kube/pod\n", files)
    assert usable_cpus(root, affinity=EIGHT) == 1


def test_no_quota_leaves_the_affinity(tmp_path):
    root = fake_root(tmp_path, "0::/\n", {"cpu.max": "max 100000\n"})
    assert cgroup_cpu_limit(root) is None
    assert usable_cpus(root, affinity=lambda pid: {0, 3, 5}) == 3  # the CPUs this process may use, not the machine's


def test_a_cgroup_v1_quota_and_a_missing_cgroup_file(tmp_path):
    files = {"cpu,cpuacct/slurm/cpu.cfs_quota_us": "300000\n", "cpu,cpuacct/slurm/cpu.cfs_period_us": "100000\n"}
    root = fake_root(tmp_path, "4:cpu,cpuacct:/slurm\n3:memory:/slurm\n", files)
    assert usable_cpus(root, affinity=EIGHT) == 3
    unlimited = fake_root(tmp_path / "u", "4:cpu,cpuacct:/\n", {"cpu,cpuacct/cpu.cfs_quota_us": "-1\n"})
    assert usable_cpus(unlimited, affinity=EIGHT) == 8
    assert usable_cpus(tmp_path / "nothing", affinity=EIGHT) == 8


class Machine:
    """A fake clock and a step whose time depends on the thread count and on the load of the moment."""

    def __init__(self, times: dict[int, float]):
        self.now, self.times, self.applied, self.steps = 0.0, times, [], []

    def clock(self) -> float:
        return self.now

    def run(self, adaptive: AdaptiveThreads, steps: int) -> None:
        for _ in range(steps):
            seconds = self.times[adaptive.count]
            self.now += seconds
            self.steps.append(adaptive.count)
            adaptive.observe(seconds)


def test_idle_keeps_the_faster_count_and_a_busy_core_goes_down_to_one_thread():
    machine = Machine({1: 0.002, 2: 0.0013})
    adaptive = AdaptiveThreads(2, machine.applied.append, clock=machine.clock)
    adaptive.start()
    machine.run(adaptive, 400)
    assert adaptive.choices == [2] and adaptive.count == 2 and not adaptive.comparing
    # another job takes a core: two threads wait for it (10x), the watch window sees the drift, one thread is kept
    machine.times[2] = 0.02
    machine.run(adaptive, 1000)
    assert adaptive.choices[-1] == 1 and adaptive.count == 1 and machine.applied[-1] == 1
    # the job ends: a recheck (at most 30 s on) tries one more thread, and keeps it
    machine.times[2] = 0.0013
    machine.run(adaptive, 40000)
    assert adaptive.count == 2 and adaptive.choices[-1] == 2


def test_a_count_that_collapses_is_cut_short_and_a_tie_goes_to_fewer_threads():
    machine = Machine({1: 0.002, 2: 0.05})
    adaptive = AdaptiveThreads(2, machine.applied.append, clock=machine.clock)
    adaptive.start()
    machine.run(adaptive, 300)
    assert adaptive.choices == [1]
    assert machine.steps.count(2) <= 15  # a handful of slow steps, not three blocks of 50
    tie = Machine({1: 0.001, 2: 0.001, 3: 0.001, 4: 0.001})
    adaptive = AdaptiveThreads(4, tie.applied.append, clock=tie.clock)
    adaptive.start()
    tie.run(adaptive, 5000)
    assert adaptive.choices[0] == 1  # 4 -> 3 -> 2 -> 1: as fast with fewer, and gentler to the machine


def test_the_same_choice_again_looks_less_often():
    machine = Machine({1: 0.002, 2: 0.001})
    adaptive = AdaptiveThreads(2, machine.applied.append, clock=machine.clock, recheck=1.0)
    adaptive.start()
    machine.run(adaptive, 20000)  # 20 s: rechecks after 1, 2, 4, 8 s, then every 8 s
    assert set(adaptive.choices) == {2} and 4 <= len(adaptive.choices) <= 7 and adaptive.recheck == 8.0


def test_one_cpu_never_compares():
    applied = []
    adaptive = AdaptiveThreads(1, applied.append)
    adaptive.start()
    adaptive.observe(0.01)
    assert applied == [1] and not adaptive.comparing


class Counts:
    """What the BLAS count was set to, in order (threadpoolctl left to do the setting)."""

    def __init__(self, monkeypatch):
        self.set = []
        real = threads.BlasThreads.set

        def spy(blas, count):
            self.set.append(count)
            real(blas, count)

        monkeypatch.setattr(threads.BlasThreads, "set", spy)


class InForce(Callback):
    def __init__(self):
        self.seen = set()

    def on_batch_end(self, trainer, step, logs):
        self.seen.add(threads.blas_threads_now())


def test_a_fixed_count_is_in_force_while_training_and_the_old_one_after():
    before = threads.blas_threads_now()
    model = dnncli.build_model(TINY["model"], seed=0)
    trainer = Trainer(model, "sparse_categorical_crossentropy", "adam", 16, True, 0)
    trainer.threads = ThreadPolicy(1, cpus=2)
    seen = InForce()
    trainer.fit(np.random.rand(64, 2), np.random.randint(0, 2, 64), epochs=1, callbacks=[seen])
    assert seen.seen == {1} and threads.blas_threads_now() == before


@pytest.mark.parametrize("how", ["option", "config"])
def test_train_uses_the_count_given_by_threads_or_the_config(tmp_path, monkeypatch, how):
    counts = Counts(monkeypatch)
    config = TINY | {"training": TINY["training"] | ({"threads": 1} if how == "config" else {})}
    (tmp_path / "c.yaml").write_text(yaml.safe_dump(config))
    args = ["train", str(tmp_path / "c.yaml"), "--out", str(tmp_path / "run"), "-q"]
    r = CliRunner().invoke(app, args + (["--threads", "1"] if how == "option" else []))
    assert r.exit_code == 0, r.output
    assert counts.set == [1]
    assert config_mod.load(tmp_path / "run" / "config.yaml")["training"]["threads"] == 1


def test_threads_auto_on_the_command_line_overrides_a_configs_count(tmp_path, monkeypatch):
    counts = Counts(monkeypatch)
    monkeypatch.setattr(threads, "usable_cpus", lambda *a, **k: 2)
    monkeypatch.delenv("DNN_THREADS", raising=False)
    (tmp_path / "c.yaml").write_text(yaml.safe_dump(TINY | {"training": TINY["training"] | {"threads": 1}}))
    args = ["train", str(tmp_path / "c.yaml"), "--out", str(tmp_path / "run"), "--threads", "auto", "-q"]
    r = CliRunner().invoke(app, args)
    assert r.exit_code == 0, r.output
    assert counts.set[0] == 2  # auto starts at the usable CPUs, where the config said 1
    assert config_mod.load(tmp_path / "run" / "config.yaml")["training"]["threads"] == "auto"


@pytest.mark.parametrize("bad", ["0", "-1", "two", "1.5", "²", " 2", "2147483648", "9" * 5000])
def test_a_threads_option_that_is_not_auto_or_a_count_is_one_line(tmp_path, bad):
    (tmp_path / "c.yaml").write_text(yaml.safe_dump(TINY))
    r = CliRunner().invoke(app, ["train", str(tmp_path / "c.yaml"), "--out", str(tmp_path / "run"), f"--threads={bad}"])
    assert r.exit_code == 2
    assert "auto or a number of threads from 1 to 2,147,483,647. Received: " in r.output
    assert bad[:20] in r.output and len(r.output) < 1000 and "Traceback" not in r.output
    assert not (tmp_path / "run").exists()


def test_auto_starts_at_the_usable_cpus_and_compares_one_fewer(tmp_path, monkeypatch):
    counts = Counts(monkeypatch)
    monkeypatch.setattr(threads, "usable_cpus", lambda *a, **k: 2)
    monkeypatch.setattr(AdaptiveThreads, "SETTLE_SECONDS", 0.0)  # steps of microseconds: blocks by count alone
    monkeypatch.setattr(AdaptiveThreads, "BLOCK_SECONDS", 0.0)
    (tmp_path / "c.yaml").write_text(yaml.safe_dump(TINY | {"training": TINY["training"] | {"epochs": 8}}))
    r = CliRunner().invoke(app, ["train", str(tmp_path / "c.yaml"), "--out", str(tmp_path / "run"), "-q"])
    assert r.exit_code == 0, r.output
    assert counts.set[:2] == [2, 1]


@pytest.mark.parametrize(
    "command",
    [
        ["inspect-gradients", "{c}", "--steps", "3"],
        ["lr-find", "{c}", "--steps", "5"],
        ["gradcheck", "{c}", "--samples", "2", "--entries", "2"],
        ["bench", "{c}", "--steps", "2"],
        ["doctor", "{c}"],
    ],
)
def test_every_heavy_command_takes_threads(tmp_path, monkeypatch, command):
    counts = Counts(monkeypatch)
    (tmp_path / "c.yaml").write_text(yaml.safe_dump(TINY))
    r = CliRunner().invoke(app, [a.format(c=tmp_path / "c.yaml") for a in command] + ["--threads", "1", "--json"])
    assert r.exit_code in (0, 1), r.output
    if command[0] != "bench":
        assert counts.set and set(counts.set) == {1}
    else:  # the step timed at each count first, then the parts at the count given
        report = json.loads(r.stdout)["threads"]
        assert report["chosen"] == 1 and report["setting"] == 1 and "1" in report["step_seconds_by_threads"]
        assert counts.set[-1] == 1


def test_bench_reports_the_count_it_chose_and_the_step_at_each():
    r = CliRunner().invoke(app, ["bench", str(ROOT / "configs" / "quickstart.yaml"), "--steps", "3"])
    assert r.exit_code == 0, r.output
    assert "BLAS threads:" in r.output and "Step time at each count: 1 thread" in r.output


def test_threads_must_be_auto_or_a_positive_count():
    for bad in (0, -2, "many", True, 1.5):
        with pytest.raises(DnnError, match=r"training\.threads must be auto or a number of threads"):
            resolve(TINY | {"training": {"threads": bad}})
    assert resolve(TINY)["training"]["threads"] == "auto"


def test_a_run_resumed_with_other_threads_is_the_same_experiment(tmp_path):
    (tmp_path / "c.yaml").write_text(yaml.safe_dump(TINY))
    r = CliRunner().invoke(app, ["train", str(tmp_path / "c.yaml"), "--out", str(tmp_path / "run"), "-q"])
    assert r.exit_code == 0, r.output
    r = CliRunner().invoke(app, ["train", "--resume", str(tmp_path / "run"), "--epochs", "3", "--threads", "1", "-q"])
    assert r.exit_code == 0, r.output


def test_a_count_past_a_c_int_or_in_other_digits_is_refused_by_the_api_and_dnn_threads(monkeypatch):
    with pytest.raises(DnnError, match=r"training\.threads must be at most 2,147,483,647"):
        threads.ThreadPolicy(2**63)
    monkeypatch.setenv("DNN_THREADS", "²")
    with pytest.raises(DnnError, match=r"DNN_THREADS must be a number of threads from 1 to 2,147,483,647"):
        threads.forced()


def test_dnn_threads_fixes_auto_for_the_process(monkeypatch):
    monkeypatch.setenv("DNN_THREADS", "1")
    assert ThreadPolicy("auto", cpus=2).setting == 1 and ThreadPolicy(2, cpus=2).setting == 2
    monkeypatch.setenv("DNN_THREADS", "two")
    with pytest.raises(DnnError, match="DNN_THREADS must be a number of threads from 1"):
        ThreadPolicy("auto", cpus=2)
