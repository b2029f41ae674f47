"""A started service keeps its startup objects out of the garbage collector's way."""

import gc

from loopkit.runtime import GC_YOUNG_THRESHOLD, settle_heap


def test_settling_freezes_what_startup_made_and_collects_young_objects_less_often() -> None:
    before = gc.get_threshold()
    gc.unfreeze()
    try:
        settle_heap()
        assert gc.get_freeze_count() > 0
        assert gc.get_threshold() == (GC_YOUNG_THRESHOLD, *before[1:])
    finally:
        gc.unfreeze()
        gc.set_threshold(*before)
