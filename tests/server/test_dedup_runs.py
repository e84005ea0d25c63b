"""A run's resends are found by arithmetic on its seqs: exactly what asking row by row finds."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from whc.storage.dedup import HighWaterMarks

KEYS = st.sampled_from([None, ("rpi01", "s1"), ("rpi01", "s2"), ("rpi02", "s1")])
STEPS = st.lists(st.one_of(st.tuples(st.just("run"), KEYS, st.integers(0, 40), st.integers(1, 12)),
                           st.tuples(st.just("row"), KEYS, st.integers(0, 40), st.just(1)),
                           st.tuples(st.just("commit"), st.none(), st.just(0), st.just(0))),
                 max_size=30)


@settings(max_examples=500, deadline=None)
@given(steps=STEPS)
def test_a_runs_resends_are_what_asking_each_row_finds(steps) -> None:
    by_run, by_row = HighWaterMarks(), HighWaterMarks()
    for what, key, first, count in steps:
        if what == "commit":
            by_run.commit()
            by_row.commit()
            continue
        new = [by_row.is_new(key, seq) for seq in range(first, first + count)]
        resent = by_run.resent_in_run(key, first, count) if what == "run" else int(not by_run.is_new(key, first))
        assert new == [False] * resent + [True] * (count - resent)
    by_run.commit()
    by_row.commit()
    assert by_run.marks == by_row.marks
