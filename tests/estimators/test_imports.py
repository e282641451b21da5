"""Importing the package is cheap and has no side effects (each check in a fresh interpreter)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def _run(code: str) -> dict:
    """Run ``code`` in a fresh interpreter importing this checkout; return the JSON it prints."""
    out = subprocess.run(
        [sys.executable, "-c", code],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
        env={**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"},
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


# Third-party libraries add filters of their own when imported (numpy, scipy do): import them
# first, so that only skhyperlearn's own import is compared.
_PROBE = """
import json, sys, warnings
import numpy, scipy.sparse, scipy.sparse.csgraph, scipy.sparse.linalg, sparse
import sklearn.neighbors, sklearn.utils
filters = list(warnings.filters)
{imports}
print(json.dumps({{
    "torch": "torch" in sys.modules,
    "filters_changed": list(warnings.filters) != filters,
    "file": sys.modules["skhyperlearn"].__file__,
}}))
"""


@pytest.mark.parametrize(
    "imports",
    [
        "import skhyperlearn",
        "import skhyperlearn.graphs",
        "import skhyperlearn.hypergraph",
        "import skhyperlearn.datasets",
        "import skhyperlearn.metrics",
        "import skhyperlearn.model_selection",
        "from skhyperlearn import Hypergraph, datasets, graphs",
    ],
)
def test_import_does_not_load_torch_nor_touch_warning_filters(imports):
    report = _run(_PROBE.format(imports=imports))
    assert Path(report["file"]).resolve().parent == ROOT / "skhyperlearn"
    assert not report["torch"], f"{imports!r} imported torch"
    assert not report["filters_changed"], f"{imports!r} changed the global warning filters"


def test_estimators_load_on_first_access():
    report = _run(
        "import json, sys, skhyperlearn\n"
        "before = 'torch' in sys.modules\n"
        "est = skhyperlearn.HyperLearnDecomposition\n"
        "from skhyperlearn import HyperLearnRegressor\n"
        "from skhyperlearn._decomposition import HyperLearnDecomposition as direct\n"
        "print(json.dumps({'before': before, 'after': 'torch' in sys.modules,\n"
        "    'same': est is direct, 'name': HyperLearnRegressor.__name__,\n"
        "    'dir': sorted(set(skhyperlearn.__all__) - set(dir(skhyperlearn)))}))"
    )
    assert report == {
        "before": False,
        "after": True,
        "same": True,
        "name": "HyperLearnRegressor",
        "dir": [],
    }


def test_unknown_attribute_raises_attribute_error():
    import skhyperlearn

    with pytest.raises(AttributeError, match="no_such_name"):
        skhyperlearn.no_such_name  # noqa: B018
