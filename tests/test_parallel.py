"""The fork-and-pipe helper the batch commands use."""

from __future__ import annotations

import os

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
