"""``read_npy_share``: a rank's share of one ``.npy`` pair (coords, values), memory-mapped.

References: the whole tensor's entries (each rank's slice equals ``shard_range`` of them, and
the shares together are every entry once), and files whose other ranks' bytes are made
invalid, which a rank reading only its slice never sees.
"""

import numpy as np
import pytest
import sparse

from skhyperlearn.distributed import read_npy_share
from skhyperlearn.distributed._shards import shard_range
from skhyperlearn.hypergraph import Hypergraph

SHAPE = (20, 15, 10)


def _pair(tmp_path, n=300, seed=0):
    rng = np.random.default_rng(seed)
    cells = np.sort(rng.choice(np.prod(SHAPE), size=n, replace=False))
    coords = np.array(np.unravel_index(cells, SHAPE), dtype=np.int64)
    values = rng.random(n) + 0.5
    np.save(tmp_path / "coords.npy", coords)
    np.save(tmp_path / "values.npy", values)
    return tmp_path / "coords.npy", tmp_path / "values.npy", coords, values


@pytest.mark.parametrize("world", [1, 2, 3, 7])
def test_shares_are_the_ranks_slices_and_every_entry_once(tmp_path, world):
    c, v, coords, values = _pair(tmp_path)
    parts = [read_npy_share(c, v, SHAPE, r, world) for r in range(world)]
    for r, part in enumerate(parts):
        assert isinstance(part, Hypergraph) and isinstance(part.tensor, sparse.COO)
        assert part.tensor.shape == SHAPE
        start, stop = shard_range(len(values), r, world)
        np.testing.assert_array_equal(part.tensor.coords, coords[:, start:stop])
        np.testing.assert_array_equal(part.tensor.data, values[start:stop])
        # A copy in the kernels' index type, not a view of the mapped file.
        assert part.tensor.coords.dtype == np.int32
        assert not isinstance(part.tensor.data, np.memmap)
    np.testing.assert_array_equal(np.concatenate([p.tensor.data for p in parts]), values)


def test_a_rank_reads_only_its_slice(tmp_path):
    c, v, coords, values = _pair(tmp_path)
    start, stop = shard_range(len(values), 1, 3)
    # Every byte outside rank 1's entries made invalid: coordinates out of shape, NaN values.
    bad_coords, bad_values = np.full_like(coords, 10**6), np.full_like(values, np.nan)
    bad_coords[:, start:stop], bad_values[start:stop] = coords[:, start:stop], values[start:stop]
    np.save(c, bad_coords)
    np.save(v, bad_values)
    part = read_npy_share(c, v, SHAPE, 1, 3)
    np.testing.assert_array_equal(part.tensor.coords, coords[:, start:stop])
    np.testing.assert_array_equal(part.tensor.data, values[start:stop])
    with pytest.raises(ValueError, match=r"coords\.npy.*mode 0.*outside \[0, 20\)"):
        read_npy_share(c, v, SHAPE, 0, 3)


def test_mismatched_files_are_refused_naming_them(tmp_path):
    c, v, coords, values = _pair(tmp_path)
    laps = [None, None, None]
    np.save(v, values[:-1])
    with pytest.raises(ValueError, match=r"values\.npy.*one value per entry \(300\)"):
        read_npy_share(c, v, SHAPE, 0, 2, laps)
    np.save(v, values)
    with pytest.raises(ValueError, match=r"coords\.npy.*K=4"):
        read_npy_share(c, v, (*SHAPE, 3), 0, 2)
    np.save(c, coords.astype(np.float64))
    with pytest.raises(ValueError, match="must be integers"):
        read_npy_share(c, v, SHAPE, 0, 2)
    np.save(c, coords)
    np.save(v, np.arange(300))
    with pytest.raises(ValueError, match="floating point"):
        read_npy_share(c, v, SHAPE, 0, 2)
    (tmp_path / "text.npy").write_text("not an array")
    with pytest.raises(ValueError, match=r"coords .*text\.npy.* not a readable \.npy"):
        read_npy_share(tmp_path / "text.npy", v, SHAPE, 0, 2)
    with pytest.raises(ValueError, match="rank=2 is not in"):
        read_npy_share(c, v, SHAPE, 2, 2)
    np.save(v, values)
    with pytest.raises(ValueError, match="301 ranks share 300 entries"):
        read_npy_share(c, v, SHAPE, 0, 301)
