"""Mutation score per module from mutmut's results (`make mutation` prints it).

Reads ``mutmut results --all true`` (one ``name: status`` line per mutant; the
name is ``module.function__mutmut_N``) and prints, per module, the mutants
killed (a test failed, or the mutant timed out) out of those tested, and the
names of the survivors to read with ``mutmut show NAME``. Arguments (the
patterns given to ``mutmut run``, as ``make mutation MUTANTS=...`` passes them)
keep only the modules they name; a module none of whose mutants was run yet is
listed as not run and does not fail the target.
"""

from __future__ import annotations

import fnmatch
import subprocess
import sys
from collections import Counter, defaultdict
from pathlib import Path

KILLED = {"killed", "timeout"}
# Not run (yet). A mutant no selected test executes ("no tests") counts as not
# killed, as in mutmut's own score: code no test reaches keeps no promise.
NOT_TESTED = {"not checked", "skipped"}


def module_of(name: str) -> str:
    """``salarymodel.promotion.gate.x_paired_interval__mutmut_3`` ->
    ``salarymodel.promotion.gate`` (a method's
    part after the module starts with ``x\u01c1``, a function's with ``x_``)."""
    parts = name.split(".")
    for i, part in enumerate(parts):
        if part.startswith(("x_", "x\u01c1")):
            return ".".join(parts[:i])
    return name


def main(patterns: list[str]) -> int:
    """Print the table; exit 1 when a module run is below the target (90% killed)."""
    mutmut = Path(sys.executable).with_name("mutmut")
    lines = subprocess.run(
        [str(mutmut), "results", "--all", "true"], capture_output=True, text=True, check=True
    ).stdout.splitlines()
    counts: dict[str, Counter[str]] = defaultdict(Counter)
    survivors: dict[str, list[str]] = defaultdict(list)
    for line in lines:
        name, _, status = line.strip().rpartition(": ")
        if not name or (patterns and not any(fnmatch.fnmatch(name, p) for p in patterns)):
            continue
        module = module_of(name)
        counts[module][status] += 1
        if status == "survived":
            survivors[module].append(name)
    below = False
    print(f"{'module':42} {'killed':>7} {'tested':>7} {'score':>7}  no tests  not run")
    for module in sorted(counts):
        c = counts[module]
        tested = sum(n for s, n in c.items() if s not in NOT_TESTED)
        killed = sum(c[s] for s in KILLED)
        score = killed / tested if tested else float("nan")
        below |= bool(tested) and not score >= 0.9
        untested = sum(c[s] for s in NOT_TESTED)
        print(f"{module:42} {killed:7d} {tested:7d} {score:7.1%}  {c['no tests']:8d}  {untested}")
    for module, names in sorted(survivors.items()):
        print(f"\nsurvived in {module} ({len(names)}):")
        for name in names:
            print(f"  {name}")
    return 1 if below else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
