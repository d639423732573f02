"""Timing on a shared machine: other processes' CPU share, and the confidence interval of a paired speedup."""

from __future__ import annotations

import os
import subprocess
import sys
import time

import pytest

from spdy_recipes.profile.hardware import CpuLoad
from spdy_recipes.profile.noise import paired_speedup


def test_paired_speedup_is_the_median_ratio_with_an_interval_around_it():
    dense = [[100.0, 102.0], [150.0, 151.0], [101.0, 99.0], [120.0, 121.0], [100.0, 100.0]]
    pruned = [[50.0, 51.0], [76.0, 74.0], [50.0, 50.0], [61.0, 59.0], [49.0, 51.0]]
    result = paired_speedup(dense, pruned)
    assert result.rounds == 5 and result.speedup == pytest.approx(2.0, abs=0.02)
    assert result.low <= result.speedup <= result.high and result.high - result.low < 0.1
    assert paired_speedup(dense, pruned) == result  # seeded


def test_a_slow_phase_hitting_both_models_does_not_move_the_paired_speedup():
    """The machine is twice as slow in two of six rounds: pairing keeps the ratio, as ratios of medians over
    all calls would not if the slow phase hit one model's calls more than the other's."""
    dense = [[100.0]] * 4 + [[200.0]] * 2
    pruned = [[80.0]] * 4 + [[160.0]] * 2
    result = paired_speedup(dense, pruned)
    assert result.speedup == pytest.approx(1.25) and result.low == pytest.approx(1.25)


def test_noisy_rounds_widen_the_interval():
    steady = paired_speedup([[100.0]] * 8, [[80.0]] * 8)
    noisy = paired_speedup([[100.0]] * 8, [[80.0], [60.0], [95.0], [70.0], [85.0], [80.0], [90.0], [65.0]])
    assert steady.high - steady.low == pytest.approx(0.0)
    assert noisy.high - noisy.low > 0.1


def test_bad_input_is_refused():
    with pytest.raises(ValueError):
        paired_speedup([[1.0]], [[1.0], [2.0]])


def test_cpu_load_sees_another_process_and_not_our_own_work():
    with CpuLoad() as own:
        end = time.monotonic() + 0.5
        while time.monotonic() < end:  # this process's own work does not count
            pass
    hog = subprocess.Popen([sys.executable, "-c", "import time\nend = time.monotonic() + 1.5\n"
                                                  "while time.monotonic() < end: pass"])
    try:
        time.sleep(0.2)
        with CpuLoad() as other:
            time.sleep(0.8)
    finally:
        hog.wait()
    if own.busy is None:
        pytest.skip("no /proc/stat on this system: the load cannot be read")
    # another process spinning on one core: about 1/cores of the machine; our own spinning is left out (what
    # other processes of a shared machine used meanwhile counts in both; a saturated machine reads near 1)
    one_core = 1 / (os.cpu_count() or 1)
    assert other.busy >= 0.6 * one_core and (other.busy > own.busy + 0.5 * one_core or other.busy > 0.9)
