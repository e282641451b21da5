"""Fitting over several processes with torch.distributed, launched with ``torchrun``.

Each rank updates the modalities it owns (mode k on rank ``k mod world_size``) and the ranks
exchange only factor matrices and biases each round (``schedule="distributed"``, see
:mod:`skhyperlearn.solvers._distributed`). Every rank ends with the same fitted
:class:`~skhyperlearn.HyperLearnDecomposition`; rank 0 saves it, and it is an ordinary estimator
(pickle it, load it on a machine without the others, call ``transform``).

On one machine, three processes::

    torchrun --nproc-per-node 3 -m skhyperlearn.distributed --synthetic 60,50,40 \\
        --output model.pkl

Across machines, the usual rendezvous arguments (``--nnodes``, ``--node-rank``,
``--rdzv-endpoint``, ...) of torchrun. Run ``python -m skhyperlearn.distributed --help`` for the
options. In a script of your own: :func:`init_process_group`, then fit an estimator with
``schedule="distributed"`` on every rank with the same data and parameters.

A hypergraph too large for one machine: :func:`write_shards` splits its stored entries into a
folder of shard files, and ``--data FOLDER`` (``schedule="sharded"``) has each rank read only
its own shards (:func:`read_shard`) and hold about ``nnz / world_size`` of the entries; every
pass over them is summed over the ranks, to the ranks that solve each block of a mode's rows
(``reduce_scatter``), and the solved rows are gathered (``all_gather``).
:func:`read_npy_share` reads a rank's share of one ``.npy`` pair (coordinates and values)
without a folder of shards.
"""

from ._launch import DEFAULT_TIMEOUT, init_process_group
from ._shards import read_npy_share, read_shard, write_shards

__all__ = ["DEFAULT_TIMEOUT", "init_process_group", "read_npy_share", "read_shard", "write_shards"]
