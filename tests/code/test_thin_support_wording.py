"""The thin-support warning reads right for none, one and a few records."""

from __future__ import annotations

from salarymodel.vocabulary import thin_support_warning


def test_thin_support_warning_reads_right_for_zero_one_and_many() -> None:
    none, one, few = (thin_support_warning(n) for n in (0, 1, 7))
    assert none.startswith("thin support: no training records share this role family")
    assert one.startswith("thin support: only 1 training record shares this role family")
    assert few.startswith("thin support: only 7 training records share this role family")
    # The old wording ("calibrated on such jobs") read oddly with no such jobs.
    assert all("such jobs" not in w and "similarly thin support" in w for w in (none, one, few))
