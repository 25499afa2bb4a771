"""The fork-and-pipe helper the batch commands use."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
from hypothesis import given
from hypothesis import strategies as st

from permgen._internal import parallel
from tests.conftest import ROOT


@given(st.lists(st.integers(), max_size=50), st.integers(min_value=1, max_value=9))
def test_split_keeps_every_item_in_order_in_at_most_n_slices(items: list[int], n: int) -> None:
    slices = parallel.split(items, n)
    assert [x for part in slices for x in part] == items
    assert len(slices) <= n
    assert len({len(part) for part in slices[:-1]}) <= 1  # equal slices, the last one shorter


def _square_in_child(x: int) -> tuple[int, int]:
    if x == 3:
        raise ValueError("this worker fails")
    return os.getpid(), x * x


def test_fork_map_returns_results_in_order_and_none_for_a_failed_worker() -> None:
    results = parallel.fork_map(_square_in_child, [1, 2, 3, 4])
    assert [r[1] if r else None for r in results] == [1, 4, None, 16]
    pids = {r[0] for r in results if r}
    assert os.getpid() not in pids and len(pids) == 3  # each ran in its own process


def test_fork_map_can_run_the_first_item_here_while_the_workers_run_the_others() -> None:
    results = parallel.fork_map(_square_in_child, [1, 2, 3, 4], first_here=True)
    assert [r[1] if r else None for r in results] == [1, 4, None, 16]
    assert results[0] is not None and results[0][0] == os.getpid()  # the first ran here
    pids = {r[0] for r in results[1:] if r}
    assert os.getpid() not in pids and len(pids) == 2
    with pytest.raises(ValueError, match="this worker fails"):  # here, it is not a None
        parallel.fork_map(_square_in_child, [3, 4], first_here=True)


def test_default_jobs_is_bounded() -> None:
    assert 1 <= parallel.default_jobs() <= parallel.MAX_JOBS


def test_when_no_process_can_be_started_every_share_comes_back_for_the_caller(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    started: list[int] = []
    real_fork = os.fork

    def fork_once() -> int:  # the system grants one more process, then refuses
        if started:
            raise BlockingIOError(11, "Resource temporarily unavailable")
        started.append(1)
        return real_fork()

    monkeypatch.setattr(os, "fork", fork_once)
    results = parallel.fork_map(_square_in_child, [5, 6, 7])
    assert [r[1] if r else None for r in results] == [25, None, None]
    fds = set(os.listdir("/proc/self/fd"))
    parallel.fork_map(_square_in_child, [5, 6])  # no descriptor is left open
    assert set(os.listdir("/proc/self/fd")) <= fds


# Run in a fresh interpreter: fork_map is for single-threaded programs (the command line),
# and a test process that runs other threads could take the Ctrl-C on one of them.
_CTRL_C_WHILE_FORKING = """
import os, signal, sys, time
from permgen._internal import parallel
from tests.conftest import ROOT

forked = []
real_fork = os.fork

def fork_then_ctrl_c():  # a Ctrl-C that reaches the caller while it is inside fork()
    pid = real_fork()
    if pid:
        forked.append(pid)
        if len(forked) == 2:
            os.kill(os.getpid(), signal.SIGINT)
    return pid

def sleep(x):
    time.sleep(30)
    return x

os.fork = fork_then_ctrl_c
try:
    parallel.fork_map(sleep, [1, 2, 3])
    print("no KeyboardInterrupt")
except KeyboardInterrupt:
    pass
for pid in forked:
    try:
        os.waitpid(pid, os.WNOHANG)
        print(pid, "left running")
        os.kill(pid, signal.SIGKILL)
    except ChildProcessError:
        print(pid, "reaped")
"""


def test_ctrl_c_that_comes_while_forking_leaves_no_worker_running() -> None:
    """The Ctrl-C is held back while forking and raised when the mask is lifted: the child
    just forked must already be among those the clean-up kills, or it outlives the command."""
    proc = subprocess.run(
        [sys.executable, "-c", _CTRL_C_WHILE_FORKING],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert len(lines) == 2, proc.stdout  # the third worker was never started
    assert all(line.endswith(" reaped") for line in lines), proc.stdout
