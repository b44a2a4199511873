"""The ledger's statistics against scipy and against hand-worked examples."""

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from hsilib.claims import paired_verdict
from hsilib.claims.stats import decide, estimate, holm, rank_intervals


@pytest.mark.parametrize("values, threshold", [([1.2, 0.4, 2.2, 0.9], 0.0), ([-0.3, 0.8, 0.1], 0.5),
                                                (np.linspace(-2, 3, 12) ** 2, -0.5)])
def test_the_interval_and_p_value_are_scipys_t_interval_and_t_test(values, threshold):
    values = np.asarray(values, dtype=float)
    est = estimate(values, threshold)
    low, high = stats.t.interval(0.95, len(values) - 1, loc=values.mean(), scale=stats.sem(values))
    assert (est.low, est.high) == pytest.approx((low, high))
    assert est.p == pytest.approx(stats.ttest_1samp(values, threshold).pvalue)
    assert est.n == len(values) and est.mean == pytest.approx(values.mean())


def test_differences_that_do_not_vary_give_no_interval_and_no_p_value_not_a_certainty():
    est = estimate([0.2, 0.2, 0.2], 0.0)
    assert np.isnan(est.p) and np.isnan(est.low) and np.isnan(est.high)
    assert decide(est, est.p) == "inconclusive"
    assert "no spread" in est.text()
    verdict, summary = paired_verdict([0.3, 0.3, 0.3], threshold=0.0)
    assert verdict == "inconclusive", summary


def test_one_value_has_no_interval():
    with pytest.raises(ValueError, match="at least 2"):
        estimate([1.0])


def test_holm_multiplies_the_ith_smallest_by_m_minus_i_plus_one_and_keeps_the_order():
    # Worked by hand: sorted 0.005 (x4 = 0.02), 0.01 (x3 = 0.03), 0.03 (x2 = 0.06), 0.04 (x1 = 0.04,
    # raised to 0.06 so that a larger p never gets a smaller adjusted one).
    assert holm([0.01, 0.04, 0.03, 0.005]) == pytest.approx([0.03, 0.06, 0.06, 0.02])
    assert holm([0.5, 0.6]) == pytest.approx([1.0, 1.0])  # capped at 1
    got = holm([0.01, np.nan, 0.02])  # a test that could not run is not counted
    assert np.isnan(got[1]) and got[[0, 2]] == pytest.approx([0.02, 0.02])
    p = np.random.default_rng(0).uniform(0, 0.1, size=20)
    adjusted = holm(p)
    order = np.argsort(p)
    assert np.all(np.diff(adjusted[order]) >= 0)
    assert np.all(adjusted >= p) and np.all(adjusted <= np.minimum(1, len(p) * p) + 1e-12)


def test_decisions_follow_the_adjusted_p_value_and_the_side_of_the_threshold():
    above = estimate([1.4, 1.6, 1.5, 1.7], 0.5)
    below = estimate([-1.4, -1.6, -1.5, -1.7], 0.5)
    assert above.low > 0.5 and decide(above, above.p) == "holds"
    assert below.high < 0.5 and decide(below, below.p) == "fails"
    assert decide(above, 0.2) == "inconclusive"  # raw p small, Holm-adjusted not


def test_rank_intervals_are_tight_for_a_clear_order_and_wide_for_a_close_one():
    rng = np.random.default_rng(1)
    clear = pd.DataFrame({"a": 90 + rng.normal(size=8), "b": 80 + rng.normal(size=8),
                          "c": 70 + rng.normal(size=8)})
    ranks = rank_intervals(clear)
    assert ranks.loc["a"].tolist() == [1, 1, 1] and ranks.loc["c"].tolist() == [3, 3, 3]
    close = pd.DataFrame({"a": [80.0, 81.0, 79.0, 80.5], "b": [80.5, 80.0, 79.5, 80.2], "c": [60.0] * 4})
    ranks = rank_intervals(close)
    assert ranks.loc["a", "low"] == 1 and ranks.loc["a", "high"] == 2
    assert ranks.loc["b", "low"] == 1 and ranks.loc["b", "high"] == 2
    assert ranks.loc["c"].tolist() == [3, 3, 3]
