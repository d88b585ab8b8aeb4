"""The whole-file checks' figures for real later files (configs/salarymodel.yaml, `retraining`).

Each case treats one real later period of the shipped data as a "new file" and
everything before it as the existing data (a feature builder fit on it stands
in for the champion's). Prints, per case, what ``retraining.drift_checks``
compares with its limits: the unseen-title and unseen-skills shares, the
largest feature PSI (``year`` aside) and the salary PSI.

    .venv/bin/python scripts/measure_file_checks.py
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from salarymodel.config.settings import load_settings, load_sources
from salarymodel.core.features import FeatureBuilder
from salarymodel.data.dataset import load_training_data
from salarymodel.evaluation.drift import drift_report


def cases(records: pd.DataFrame) -> dict[str, np.ndarray]:
    """Masks of the later periods used as new files."""
    survey = (records["source"] == "aijobs").to_numpy()
    year = pd.to_numeric(records["year"]).to_numpy()
    month = year * 12 + pd.to_numeric(records["month"]).to_numpy()
    last = np.nanmax(month[~survey])
    return {
        "survey 2024": survey & (year == 2024),
        "survey 2023 (before 2024 only)": survey & (year == 2023),
        "postings last 3 months": ~survey & (month > last - 3),
        "postings last 6 months": ~survey & (month > last - 6),
    }


def main() -> None:
    settings, sources = load_settings(), load_sources()
    records = load_training_data(settings, sources, accepted=False).records.reset_index(drop=True)
    year = pd.to_numeric(records["year"]).to_numpy()
    for name, new in cases(records).items():
        survey_2024 = (records["source"] == "aijobs").to_numpy() & (year == 2024)
        # Existing data: what came before the new period (2023's case leaves 2024 out).
        before = ~new & ~(survey_2024 if "2023" in name else np.zeros(len(new), bool))
        reference = records[before]
        builder = FeatureBuilder.fit(reference, settings.features)
        report = drift_report(reference, records[new], builder)
        judged = [f for f in report.features if f.feature not in settings.retraining.psi_exempt]
        worst = max(judged, key=lambda f: f.psi)
        salary = {s: round(v["psi"], 3) for s, v in report.salary.items() if s != "all"}
        print(
            f"{name}: {int(new.sum()):,} records; unseen titles "
            f"{report.novelty['unseen_title_share']:.1%}, unseen skills "
            f"{report.novelty['unseen_skills_share']:.1%}; largest feature PSI "
            f"{worst.feature} {worst.psi:.2f}; salary PSI {salary}"
        )


if __name__ == "__main__":
    main()
