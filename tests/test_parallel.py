"""The fork-and-pipe helper the batch commands use."""

from __future__ import annotations

import contextlib
import os

import pytest
from hypothesis import given
from hypothesis import strategies as st

from permgen import parallel


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


def _sleep_in_child(x: int) -> int:
    import time

    time.sleep(30)
    return x


def test_ctrl_c_that_comes_while_forking_leaves_no_worker_running(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A Ctrl-C that reaches the caller while it is still inside fork() (held back by the
    signal mask) is raised when the mask is lifted: the child just forked must already be
    among those the clean-up kills, or it outlives the command."""
    import signal

    forked: list[int] = []
    real_fork = os.fork

    def fork_then_ctrl_c() -> int:
        pid = real_fork()
        if pid:
            forked.append(pid)
            if len(forked) == 2:
                os.kill(os.getpid(), signal.SIGINT)
        return pid

    monkeypatch.setattr(os, "fork", fork_then_ctrl_c)
    try:
        with pytest.raises(KeyboardInterrupt):
            parallel.fork_map(_sleep_in_child, [1, 2, 3])
        assert len(forked) == 2  # the third was never started
        for pid in forked:  # every worker was killed and reaped
            with pytest.raises(ChildProcessError):
                os.waitpid(pid, os.WNOHANG)
    finally:
        for pid in forked:
            with contextlib.suppress(OSError):
                os.kill(pid, signal.SIGKILL)
                os.waitpid(pid, 0)
