"""The percentile histogram of a pass, raw and calibrated, CV and backtest.

Flat when the percentile is calibrated: each percentile bin holds its share of records.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    import pandas as pd


PIT_PLOT = "percentile_histogram.png"


def write_pit_plot(frames: dict[str, pd.DataFrame], folder: Path) -> Path:
    """Histograms of the raw and calibrated percentiles (flat when calibrated), CV and backtest."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(1, len(frames), figsize=(5 * len(frames), 3.6), squeeze=False)
    bins = np.linspace(0, 100, 21)
    for axis, (split, frame) in zip(axes[0], frames.items(), strict=True):
        for column, label in (("raw_percentile", "raw"), ("percentile", "calibrated")):
            axis.hist(frame[column].dropna(), bins=bins, density=True, histtype="step",
                      label=label, linewidth=1.5)  # fmt: skip
        axis.axhline(1 / 100, color="grey", linestyle=":", label="ideal")
        axis.set_title(f"{split}: percentile of own salary ({len(frame):,} records)")
        axis.set_xlabel("percentile")
        axis.legend()
    figure.tight_layout()
    path = folder / PIT_PLOT
    figure.savefig(path, dpi=100)
    plt.close(figure)
    return path
