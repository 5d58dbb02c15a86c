"""BLAS threads chosen at run time: from the CPUs this process may really use, and by measuring the step.

A BLAS library starts as many threads as the machine has cores, and a thread that waits for a core another process
holds spins: on a shared machine the whole step then waits for it (2 cores and one busy process beside the
training: an epoch ten times slower). Here the count is capped by the CPUs this process may use (its affinity and
its cgroup's CPU quota, as a container, a SLURM or a Kubernetes job sets them; not ``os.cpu_count()``), and, with
``training.threads: auto``, chosen while training: the step is timed at the current count against one fewer during
the first steps, the faster is kept, and the choice is looked at again when the step time drifts (another job
started or ended) or after a while. The count is set through ``threadpoolctl`` on the BLAS libraries loaded.
"""

from __future__ import annotations

import contextlib
import math
import os
import statistics
import time
from collections.abc import Callable
from pathlib import Path

from dnncli.errors import MAX_INT, DnnError, check_int

AUTO = "auto"


def cgroup_cpu_limit(root: Path | str = "/") -> float | None:
    """The CPU quota of this process's cgroup in CPUs (``cpu.max``, v2; ``cpu.cfs_quota_us``, v1), or None.

    ``root`` is the file system's root (tests give a fake one). The smallest quota of the cgroup and its parents
    counts, as the kernel enforces each of them.
    """
    root = Path(root)
    try:
        lines = (root / "proc/self/cgroup").read_text().splitlines()
    except OSError:
        return None
    limits = []
    for line in lines:
        _, controllers, path = line.split(":", 2)
        if controllers == "":  # v2: one unified hierarchy
            limits += [_v2_quota(d) for d in _dirs(root / "sys/fs/cgroup", path)]
        elif "cpu" in controllers.split(","):
            for mount in ("cpu,cpuacct", "cpu", "cpuacct,cpu"):
                base = root / "sys/fs/cgroup" / mount
                if base.is_dir():
                    limits += [_v1_quota(d) for d in _dirs(base, path)]
                    break
    found = [q for q in limits if q is not None]
    return min(found) if found else None


def _dirs(base: Path, path: str) -> list[Path]:
    """The cgroup's directory and those above it; in a container whose cgroup is mounted as its root, the root."""
    parts = [p for p in path.strip("/").split("/") if p]
    out = [base.joinpath(*parts[:i]) for i in range(len(parts), -1, -1)]
    return [d for d in out if d.is_dir()] or [base]


def _v2_quota(directory: Path) -> float | None:
    try:
        quota, period = (directory / "cpu.max").read_text().split()[:2]
    except (OSError, ValueError):
        return None
    return None if quota == "max" else int(quota) / int(period)


def _v1_quota(directory: Path) -> float | None:
    try:
        quota = int((directory / "cpu.cfs_quota_us").read_text())
        period = int((directory / "cpu.cfs_period_us").read_text())
    except (OSError, ValueError):
        return None
    return None if quota <= 0 or period <= 0 else quota / period


def usable_cpus(root: Path | str = "/", affinity: Callable[[], set] | None = None) -> int:
    """The CPUs this process may use: its affinity mask, capped by its cgroup's quota (rounded up, as loky does:
    a quota of 1.5 CPUs runs two threads part of the time); at least 1."""
    get = affinity or getattr(os, "sched_getaffinity", None)
    try:
        count = len(get(0)) if get is not None else os.cpu_count() or 1
    except OSError:
        count = os.cpu_count() or 1
    quota = cgroup_cpu_limit(root)
    if quota is not None:
        count = min(count, max(1, math.ceil(quota)))
    return max(1, count)


class BlasThreads:
    """The thread count of the BLAS libraries loaded in this process, read and set through ``threadpoolctl``.

    ``restore()`` puts back the counts found at construction.
    """

    def __init__(self):
        from threadpoolctl import ThreadpoolController

        self._libs = ThreadpoolController().select(user_api="blas").lib_controllers
        self._original = [lib.num_threads for lib in self._libs]

    def get(self) -> int | None:
        """The count in force (the largest, where several libraries are loaded), or None without a BLAS."""
        return max((lib.get_num_threads() for lib in self._libs), default=None)

    def set(self, count: int) -> None:
        for lib in self._libs:
            lib.set_num_threads(count)

    def restore(self) -> None:
        for lib, count in zip(self._libs, self._original):
            lib.set_num_threads(count)


def blas_threads_now() -> int | None:
    """The BLAS thread count in force in this process (None without a BLAS library loaded)."""
    return BlasThreads().get()


class AdaptiveThreads:
    """The thread count chosen by timing the step: the current count against one fewer, the faster kept.

    Steps are compared by their mean time, not the median: a thread that waits for a busy core makes a few steps
    very slow, and that tail is the cost. Blocks at the two counts are interleaved (the load changes under a
    comparison); a block more than ``cut`` times slower than the other count's mean so far ends the comparison
    at once, so that a count that collapses is not paid for long.

    Parameters
    ----------
    maximum : int
        The most threads to use (the usable CPUs); the first count tried.
    apply : callable
        ``apply(count)`` sets the count (``BlasThreads.set``; tests record it).
    clock : callable, default=time.perf_counter
        Seconds, for the block lengths, the watch windows and the rechecks (tests give a fake one).
    block_steps : int, default=50
        Most steps timed at one count before switching to the other (at least 3 steps and 0.1 s otherwise, after
        the first step, or, going to fewer threads, 0.1 s of steps: the switch's own cost, not timed).
    rounds : int, default=3
        Blocks at each count, interleaved, before choosing; fewer where a round shows one count 15% faster.
    drift : float, default=0.25
        A watch window's mean step time this much slower or faster than at the choice starts a new comparison.
    recheck : float, default=30.0
        Seconds after which the choice is looked at again even without drift (a core that came free leaves the
        step time at one thread as it was); doubled each time the same count is chosen again, up to 8 times.
    cut : float, default=1.5
        A block this many times slower than the other count's mean ends the comparison.
    """

    MIN_BLOCK_STEPS = 3
    SETTLE_SECONDS = 0.1
    BLOCK_SECONDS = 0.1
    EARLY = 0.15
    WINDOW_SECONDS = 1.0

    def __init__(
        self, maximum, apply, clock=time.perf_counter, block_steps=50, rounds=3, drift=0.25, recheck=30.0, cut=1.5
    ):
        self.maximum = max(1, int(maximum))
        self.apply, self.clock = apply, clock
        self.block_steps, self.rounds, self.drift, self.cut = block_steps, rounds, drift, cut
        self.recheck = self._base_recheck = recheck
        self.count = self.maximum
        self.measured: dict[int, float] = {}  # mean step seconds at each count, from the latest comparisons
        self.choices: list[int] = []  # every count settled on, in order
        self._pair: tuple[int, int] | None = None
        self._direction = "down"
        self._reference = math.nan
        self._window: list[float] = []
        self._window_start = self._settled_at = 0.0

    def start(self) -> None:
        """Set the first count and, with more than one CPU, start comparing."""
        self.apply(self.count)
        if self.maximum > 1:
            self._compare(self.maximum, self.maximum - 1, "down")
        else:
            self._settle(1)

    @property
    def comparing(self) -> bool:
        return self._pair is not None

    def observe(self, seconds: float) -> None:
        """One step took ``seconds`` at the current count."""
        if self._pair is not None:
            self._probe_step(seconds)
        elif self.maximum > 1:
            self._watch_step(seconds)

    # comparing two counts ------------------------------------------------------------------------------
    def _compare(self, high: int, low: int, direction: str) -> None:
        self._pair, self._direction = (high, low), direction
        self._samples: dict[int, list[float]] = {high: [], low: []}
        self._blocks = 0
        # the count in force first: no switch to pay for, and a block at the other that collapses is cut at once
        self._begin_block(low if self.count == low else high)

    def _begin_block(self, count: int) -> None:
        self._fewer = count < self.count
        if count != self.count:
            self.count = count
            self.apply(count)
        self._block: list[float] = []
        self._block_start = self.clock()
        self._first = True

    def _probe_step(self, seconds: float) -> None:
        settling = self._fewer and self.clock() - self._block_start < self.SETTLE_SECONDS
        if self._first or settling:
            # the steps right after a switch are not counted: the first wakes or parks threads, and a thread let go
            # spins on for a while (OpenBLAS's idle workers wait about 0.1 s before they sleep), slowing one fewer
            # while another job holds a core
            self._first = False
            return
        if not self._block:
            self._measure_start = self.clock()
        self._block.append(seconds)
        high, low = self._pair
        other = self._samples[low if self.count == high else high]
        enough = len(self._block) >= self.MIN_BLOCK_STEPS
        if enough and other and statistics.fmean(self._block) > self.cut * statistics.fmean(other):
            self._samples[self.count] += self._block
            return self._decide(high, low)  # far slower already: no need to pay for the rest
        long_enough = self.clock() - self._measure_start >= self.BLOCK_SECONDS
        if len(self._block) >= self.block_steps or (enough and long_enough):
            self._samples[self.count] += self._block
            self._blocks += 1
            if self._blocks < 2 * self.rounds and not (self._blocks % 2 == 0 and self._clear(high, low)):
                self._begin_block(low if self.count == high else high)
            else:
                self._decide(high, low)

    def _clear(self, high: int, low: int) -> bool:
        """After a round at both counts: one is so much faster (``EARLY``) that more rounds would not change it."""
        t_high, t_low = (statistics.fmean(self._samples[c]) for c in (high, low))
        return max(t_high, t_low) > (1 + self.EARLY) * min(t_high, t_low)

    def _decide(self, high: int, low: int) -> None:
        t_high, t_low = (statistics.fmean(self._samples[c]) for c in (high, low))
        self.measured[high], self.measured[low] = t_high, t_low
        fewer_wins = t_low <= t_high  # a tie goes to fewer threads: as fast, and gentler to the rest of the machine
        if self._direction == "down":
            if fewer_wins and low > 1:
                return self._compare(low, low - 1, "down")
            return self._settle(low if fewer_wins else high)
        if not fewer_wins:
            return self._compare(high + 1, high, "up") if high < self.maximum else self._settle(high)
        # one more was no faster: then perhaps one fewer is (the load grew since the last choice)
        return self._compare(low, low - 1, "down") if low > 1 else self._settle(low)

    def _settle(self, count: int) -> None:
        self._pair = None
        if count != self.count:
            self.count = count
            self.apply(count)
        # the same choice again: look less often (each look pays for some steps at the worse count)
        same = bool(self.choices) and self.choices[-1] == count
        self.recheck = min(self.recheck * 2, 8 * self._base_recheck) if same else self._base_recheck
        self.choices.append(count)
        # the first watch window sets the reference: the comparison's steps were interleaved with the other count's
        # (and the first ones warm the caches), so their mean is no level to drift from
        self._reference = math.nan
        self._window = []
        self._settled_at = self._window_start = self.clock()

    # watching the chosen count ----------------------------------------------------------------------
    def _watch_step(self, seconds: float) -> None:
        self._window.append(seconds)
        now = self.clock()
        if now - self._window_start < self.WINDOW_SECONDS or len(self._window) < self.MIN_BLOCK_STEPS:
            return
        mean = statistics.fmean(self._window)
        self._window, self._window_start = [], now
        if math.isnan(self._reference):
            self._reference = mean
        drifted = not (self._reference / (1 + self.drift) <= mean <= self._reference * (1 + self.drift))
        if drifted or now - self._settled_at >= self.recheck:
            self.look_again()

    def look_again(self) -> None:
        """Compare again from the current count: one more first (a core may have come free), then one fewer."""
        if self.count < self.maximum:
            self._compare(self.count + 1, self.count, "up")
        else:
            self._compare(self.count, self.count - 1, "down")


class ThreadPolicy:
    """What ``training.threads`` asks of a training loop: ``auto`` (adaptive, up to the usable CPUs) or a count.

    ``with policy.active():`` sets the count for the loop and puts the previous one back after it; in between
    ``observe(seconds)`` is told each step's time.
    """

    def __init__(self, setting=AUTO, cpus: int | None = None, clock=time.perf_counter):
        # the products' last bits depend on the count, and auto's choice on the machine's load: DNN_THREADS=N fixes
        # it for every run of the process (CI does), so that two runs, or a run and its resume, are bit-identical
        if setting == AUTO and forced() is not None:
            setting = forced()
        if setting != AUTO:  # the Python API's count too: a C int, at least 1
            setting = check_int(setting, "training.threads", 1)
        self.setting = setting
        self.cpus = usable_cpus() if cpus is None else cpus
        self.clock = clock
        self.adaptive: AdaptiveThreads | None = None
        self.count = self.cpus if setting == AUTO else int(setting)

    @contextlib.contextmanager
    def active(self):
        try:
            blas = BlasThreads()
        except ImportError:  # threadpoolctl is a dependency; a broken install trains at the library's count
            yield self
            return
        try:
            if self.setting == AUTO:
                self.adaptive = AdaptiveThreads(self.cpus, self._apply(blas), clock=self.clock)
                self.adaptive.start()
            else:
                blas.set(self.count)
            yield self
        finally:
            blas.restore()

    def _apply(self, blas: BlasThreads):
        def apply(count: int) -> None:
            self.count = count
            blas.set(count)

        return apply

    def observe(self, seconds: float) -> None:
        if self.adaptive is not None:
            self.adaptive.observe(seconds)


def forced() -> int | None:
    """The count ``DNN_THREADS`` sets for ``auto`` in this process (and its children), or None."""
    text = os.environ.get("DNN_THREADS", "").strip()
    if not text:
        return None
    # ASCII digits only (str.isdigit() also takes '²', which int() refuses), and a count a C int holds
    if not (text.isascii() and text.isdigit()) or len(text) > 10 or not 1 <= int(text) <= MAX_INT:
        raise DnnError(f"DNN_THREADS must be a number of threads from 1 to {MAX_INT:,}. Received: {text!r}")
    return int(text)


@contextlib.contextmanager
def limited(setting=AUTO):
    """BLAS threads for work that is not a training loop (gradient checks): the usable CPUs, or the count given."""
    if setting == AUTO and forced() is not None:
        setting = forced()
    count = usable_cpus() if setting == AUTO else check_int(setting, "threads", 1)
    try:
        blas = BlasThreads()
    except ImportError:
        yield
        return
    try:
        blas.set(count)
        yield
    finally:
        blas.restore()
