"""The two input catalogues, over all their test modules: large, and every id unique."""

import test_catalogue_completion
import test_catalogue_datasets
import test_catalogue_estimator
import test_catalogue_graphs

_MODULES = (
    test_catalogue_estimator,
    test_catalogue_completion,
    test_catalogue_graphs,
    test_catalogue_datasets,
)


def test_catalogue_is_large_and_ids_are_unique():
    ids = [c.id for m in _MODULES for c in m.REFUSED]
    assert len(ids) == len(set(ids))
    assert len(ids) >= 30


def test_catalogue2_is_large_and_ids_are_unique():
    ids = [c.id for m in _MODULES for c in m.UNUSUAL]
    assert len(ids) >= 60 and len(set(ids)) == len(ids)
