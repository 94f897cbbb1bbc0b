"""Scripts whose tables the README and benchmarks/RESULTS.md cite; exploration lives in `research/`.

These scripts are run as files (`python benchmarks/leaderboard.py ...`, as the README says), so each
imports its siblings by bare name (`from baseline_training import fit`), which works because Python puts a
script's own folder first on the path. The research modules run as `python -m benchmarks.research.X` and
import these scripts as the `benchmarks` package; this folder goes on the path here, once, so the same
bare sibling imports resolve to the same files either way.
"""

import sys
from pathlib import Path

_HERE = str(Path(__file__).resolve().parent)
if _HERE not in sys.path:
    sys.path.append(_HERE)
