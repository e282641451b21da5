"""The schedule interface: a new schedule is one class plus its registration.

The toy schedule below is written the way a new one would be (a :class:`Schedule` subclass
decorated with ``register_schedule``): the sequential round under another name, which must
fit exactly as ``schedule="sequential"`` does, through the estimator, without another file
knowing its name.
"""

import numpy as np
import pytest

from skhyperlearn import HyperLearnDecomposition
from skhyperlearn.datasets import make_hypergraph
from skhyperlearn.solvers._schedules import (
    SCHEDULE_NAMES,
    SCHEDULES,
    Schedule,
    Sequential,
    get_schedule,
    register_schedule,
)


class _RenamedSequential(Sequential):
    name = "toy-sequential"


@pytest.fixture
def toy_schedule():
    register_schedule(_RenamedSequential)
    yield _RenamedSequential.name
    del SCHEDULES[_RenamedSequential.name]
    SCHEDULE_NAMES.discard(_RenamedSequential.name)


@pytest.mark.parametrize("solver", ["als", "hyperlearn"])
def test_a_registered_schedule_fits_through_the_estimator(toy_schedule, solver):
    data = make_hypergraph((20, 15, 10), rank=3, n_entries=400, random_state=0)
    kw = dict(rank=3, laplacians=data.laplacians, max_iter=4, tol=0, random_state=0)
    if solver == "hyperlearn":
        kw.update(solver=solver, n_terms=2, hidden=4, n_steps=1, init_iter=2)
    toy = HyperLearnDecomposition(schedule=toy_schedule, **kw).fit(data.tensor)
    ref = HyperLearnDecomposition(schedule="sequential", **kw).fit(data.tensor)
    for a, b in zip(toy.factors_, ref.factors_, strict=True):
        np.testing.assert_array_equal(a, b)
    assert toy.loss_history_ == ref.loss_history_


def test_unregistered_schedule_is_refused_naming_the_parameter():
    data = make_hypergraph((8, 6, 5), rank=2, random_state=0)
    with pytest.raises(ValueError, match="'schedule' parameter"):
        HyperLearnDecomposition(schedule="toy-sequential").fit(data.tensor)
    with pytest.raises(ValueError, match=r"schedule='nope' is not one of"):
        get_schedule("nope")


def test_the_registry_holds_the_shipped_schedules_and_what_they_say():
    assert {"sequential", "parallel", "distributed"} <= set(SCHEDULES) == SCHEDULE_NAMES
    assert all(issubclass(cls, Schedule) for cls in SCHEDULES.values())
    # The memory guard counts a gather buffer per mode only where modes run at once.
    assert get_schedule("parallel").concurrent and not get_schedule("sequential").concurrent
    # Only the distributed schedule needs something before any work: a process group.
    get_schedule("sequential").check_ready()
    with pytest.raises(ValueError, match="schedule='distributed'"):
        get_schedule("distributed").check_ready()
