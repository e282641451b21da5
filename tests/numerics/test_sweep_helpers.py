"""The small pieces of a sweep that avoid torch's thread pool or fresh allocations.

Each is checked against the plain torch expression it replaces, including the cases where it
must hand over to torch (autograd, large products) or refuse to copy (a different layout).
"""

import pytest
import torch

from skhyperlearn._numerics import _kernels
from skhyperlearn._numerics._kernels import small_matmul
from skhyperlearn.solvers._monitor import Monitor
from skhyperlearn.solvers._problem import State, all_finite
from skhyperlearn.solvers.losses._hypergraph import HypergraphQuadratic


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("shape", [(7, 3, 4), (300, 10, 10), (2000, 32, 32)])
def test_small_matmul_equals_matmul(dtype, shape):
    m, k, n = shape
    gen = torch.Generator().manual_seed(0)
    a = torch.randn(m, k, dtype=dtype, generator=gen)
    b = torch.randn(k, n, dtype=dtype, generator=gen)
    out = small_matmul(a, b)
    assert out.dtype == dtype and out.shape == (m, n)
    tol = 1e-5 if dtype == torch.float32 else 1e-12
    torch.testing.assert_close(out, a @ b, rtol=tol, atol=tol)
    # A transposed view (the Gram's AᵀA) reads the same memory the right way round.
    torch.testing.assert_close(small_matmul(a.T, a), a.T @ a, rtol=tol, atol=tol * m)


def test_small_matmul_leaves_torch_only_below_the_work_limit(monkeypatch):
    wrapped = []
    from_numpy = torch.from_numpy
    monkeypatch.setattr(torch, "from_numpy", lambda x: wrapped.append(x) or from_numpy(x))
    a, b = torch.rand(50, 4, dtype=torch.float64), torch.rand(4, 4, dtype=torch.float64)
    monkeypatch.setattr(_kernels, "_ONE_THREAD_WORK", 50 * 4 * 4)
    torch.testing.assert_close(small_matmul(a, b), a @ b)
    assert len(wrapped) == 1  # numpy's product, on the calling thread
    monkeypatch.setattr(_kernels, "_ONE_THREAD_WORK", 50 * 4 * 4 - 1)
    torch.testing.assert_close(small_matmul(a, b), a @ b)
    assert len(wrapped) == 1  # torch's
    monkeypatch.setattr(_kernels, "_ONE_THREAD_WORK", 2**21)
    with pytest.raises(RuntimeError):  # mixed dtypes: torch's call, and torch's refusal
        small_matmul(a, b.float())
    assert len(wrapped) == 1


def test_small_matmul_keeps_autograd():
    a = torch.rand(6, 3, dtype=torch.float64, requires_grad=True)
    b = torch.rand(3, 3, dtype=torch.float64)
    out = small_matmul(a.T, a)
    assert out.grad_fn is not None
    out.sum().backward()
    ref = a.detach().clone().requires_grad_(True)
    (ref.T @ ref).sum().backward()
    torch.testing.assert_close(a.grad, ref.grad)
    with torch.no_grad():
        torch.testing.assert_close(small_matmul(a, b), a @ b)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("bad", [float("nan"), float("inf"), -float("inf")])
def test_all_finite(dtype, bad):
    a = torch.rand(40, 5, dtype=dtype)
    assert all_finite(a)
    a[17, 3] = bad
    assert not all_finite(a)
    assert not all_finite(a.T)  # strided views too
    assert not all_finite(a.clone().requires_grad_(True))
    assert all_finite(torch.zeros(0, 5, dtype=dtype))


def _state(seed, shapes=((5, 2), (4, 2)), biases=False):
    gen = torch.Generator().manual_seed(seed)
    factors = [torch.rand(*s, dtype=torch.float64, generator=gen) for s in shapes]
    b = [torch.rand(s[0], dtype=torch.float64, generator=gen) for s in shapes] if biases else None
    return State(factors, b, float(seed))


@pytest.mark.parametrize("biases", [False, True])
def test_state_copy_from_writes_into_its_own_tensors(biases):
    dst, src = _state(0, biases=biases), _state(1, biases=biases)
    before = [t.data_ptr() for t in dst.factors + (dst.biases or [])]
    assert dst.copy_from(src)
    assert [t.data_ptr() for t in dst.factors + (dst.biases or [])] == before
    mine, theirs = dst.factors + (dst.biases or []), src.factors + (src.biases or [])
    for a, b in zip(mine, theirs, strict=True):
        torch.testing.assert_close(a, b)
        assert a.data_ptr() != b.data_ptr()
    assert dst.mean == src.mean


@pytest.mark.parametrize(
    "other",
    [
        _state(1, shapes=((5, 2), (3, 2))),  # a shape differs
        _state(1, shapes=((5, 2),)),  # a mode fewer
        _state(1, biases=True),  # biases where there were none
    ],
)
def test_state_copy_from_refuses_another_layout(other):
    dst = _state(0)
    kept = dst.clone()
    assert not dst.copy_from(other)
    for a, b in zip(dst.factors, kept.factors, strict=True):
        torch.testing.assert_close(a, b)
    assert dst.mean == kept.mean


def test_monitor_best_state_is_not_the_live_state():
    """The best state is copied into the monitor's own tensors: later in-place changes of the
    training state, or a worse round, leave it as it was."""

    class _Objective:
        normalize = False

        def objective(self, state):  # pragma: no cover - scores come from info["loss"]
            raise AssertionError

    monitor = Monitor(_Objective())
    live = _state(0)
    for it, loss in enumerate([3.0, 2.0], start=1):
        live.factors[0].add_(1.0)
        monitor(dict(iteration=it, loss=loss, factors=live.factors, biases=None, mean=0.0))
    kept = [a.clone() for a in live.factors]
    best_ptrs = [a.data_ptr() for a in monitor.best_state.factors]
    live.factors[0].mul_(-5.0)
    monitor(dict(iteration=3, loss=9.0, factors=live.factors, biases=None, mean=0.0))
    assert monitor.best_iter == 2
    for a, b in zip(monitor.best_state.factors, kept, strict=True):
        torch.testing.assert_close(a, b)
    assert [a.data_ptr() for a in monitor.best_state.factors] == best_ptrs
    assert all(
        a.data_ptr() != b.data_ptr()
        for a, b in zip(monitor.best_state.factors, live.factors, strict=True)
    )


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_solve_without_graph_is_the_pseudo_inverse_on_singular_grams(dtype):
    """Rank above what the data supports (two equal columns in the other modes): directions of
    G's null space get no weight, as with the minimum-norm least-squares solution."""
    gen = torch.Generator().manual_seed(0)
    base = torch.rand(30, 3, dtype=torch.float64, generator=gen)
    other = torch.cat([base, base[:, :1]], 1)  # columns 0 and 3 equal: G singular
    gram = other.T @ other
    linear = torch.rand(8, 4, dtype=torch.float64, generator=gen) @ gram  # in G's range
    lam = 0.7
    quad = HypergraphQuadratic(0, 1.0, linear.to(dtype), gram.to(dtype))
    a, b = quad.solve(None, lam, 0.0, None, 1e-8, 10)
    assert b is None and a.dtype == dtype
    ref = linear @ torch.linalg.pinv(gram, hermitian=True)
    tol = 1e-3 if dtype == torch.float32 else 1e-9
    torch.testing.assert_close(a.double(), ref, rtol=tol, atol=tol)
    # With a ridge the system is regular: (G + α/λ I)⁻¹.
    a, _ = quad.solve(None, lam, 0.2, None, 1e-8, 10)
    ref = torch.linalg.solve(gram + (0.2 / lam) * torch.eye(4, dtype=torch.float64), linear.T).T
    torch.testing.assert_close(a.double(), ref, rtol=tol, atol=tol)
