"""Market insights report: one self-contained HTML page from the canonical records.

- ``statistics``: the numbers, DataFrames in and DataFrames out;
- ``figures``: matplotlib figures of them;
- ``tables``: the tables as shown (every cell worded);
- ``text``: names of sources and codes, number formats, the accuracy sentence;
- ``sections``: what each section shows; ``build.build_report`` writes the page;
- ``render`` and ``templates/``: the jinja2 templates (autoescaped) of this
  page and of the drift page (``salarymodel.evaluation.drift``).

Nothing is imported here, so a caller pays only for the modules it uses (the
drift page needs ``render``, not matplotlib).
"""
