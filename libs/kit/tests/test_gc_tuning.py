"""The collector a started service process runs with (`loopkit.runtime.tune_gc`)."""

from __future__ import annotations

import gc

from loopkit.runtime import YOUNG_GC_THRESHOLD, tune_gc


def test_startup_objects_are_frozen_and_the_young_generation_waits_longer() -> None:
    before = gc.get_threshold()
    made_at_startup = [object(), []]
    try:
        tune_gc()
        assert gc.get_freeze_count() > 0  # startup's objects are out of the collector's reach
        assert gc.get_threshold() == (YOUNG_GC_THRESHOLD, *before[1:])
        # Frozen objects stay alive and usable; only the cyclic collector skips them.
        assert made_at_startup[1] == []
    finally:
        gc.unfreeze()
        gc.set_threshold(*before)
