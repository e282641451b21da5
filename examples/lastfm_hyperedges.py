"""Last.fm 4th-order hyperedges: users × artists × tags × months, with the friendship graph.

Every tag assignment of the HetRec 2011 Last.fm 2K data ("user u tagged artist a with tag t in
month m") is one hyperedge of a binary 4th-order tensor. The user mode carries the users'
friendship graph; artists, tags and months have none. ``HyperLearnDecomposition`` learns one
representation per user, artist, tag and month from all of it at once.

The script keeps the artists and tags used often enough to say something (``--min-artist``,
``--min-tag``), fits, prints the objective, the shapes of the learned factors and, for a few
well-known artists, their nearest artists in the learned space (cosine similarity), and saves a
figure: a 2-D PCA of the (row-normalised) artist and user representations, each artist coloured
by the genre tag it most often receives and each user by the genre tag they use most.

The data are read from a folder holding ``hetrec2011-lastfm-2k/``: ``--data``, else the
``SKHYPERLEARN_DATA`` environment variable, else ``../shared/data`` next to the repository.

Run (about a minute; the loader alone takes ~20 s)::

    python examples/lastfm_hyperedges.py --output lastfm_representations.png
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt
import numpy as np
from sklearn.decomposition import PCA
from sklearn.preprocessing import normalize

from skhyperlearn import HyperLearnDecomposition
from skhyperlearn.datasets import load_lastfm2k

GENRES = ("rock", "pop", "electronic", "metal", "hip-hop", "jazz", "indie", "classical")
FAMOUS = ("Metallica", "Britney Spears", "Daft Punk", "Miles Davis", "Radiohead")


def default_data_home() -> Path:
    env = os.environ.get("SKHYPERLEARN_DATA")
    if env:
        return Path(env)
    return Path(__file__).resolve().parents[1].parent / "shared" / "data"


def dominant_genre(H, mode: int, genre_index: dict) -> np.ndarray:
    """Per entity of ``mode``: the index in GENRES of its most frequent genre tag, -1 if none."""
    coords = H.tensor.coords
    tags = coords[2]
    lookup = np.full(H.shape[2], -1)
    for g, t in genre_index.items():
        lookup[t] = g
    g = lookup[tags]
    keep = g >= 0
    counts = np.zeros((H.shape[mode], len(GENRES)))
    np.add.at(counts, (coords[mode][keep], g[keep]), 1.0)
    return np.where(counts.sum(1) > 0, counts.argmax(1), -1)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=None, help="folder holding the data")
    parser.add_argument("--output", type=Path, default=Path("lastfm_representations.png"))
    parser.add_argument("--rank", type=int, default=16)
    parser.add_argument("--lam", type=float, default=1.0)
    parser.add_argument("--max-iter", type=int, default=50)
    parser.add_argument("--min-artist", type=int, default=20, help="keep artists tagged ≥ this")
    parser.add_argument("--min-tag", type=int, default=50, help="keep tags used ≥ this")
    parser.add_argument("--top", type=int, default=300, help="artists searched for neighbours")
    args = parser.parse_args(argv)

    data_home = args.data if args.data is not None else default_data_home()
    bunch = load_lastfm2k(data_home, order=4)
    H = bunch.hypergraph
    coords = H.tensor.coords
    artists = np.flatnonzero(np.bincount(coords[1], minlength=H.shape[1]) >= args.min_artist)
    tags = np.flatnonzero(np.bincount(coords[2], minlength=H.shape[2]) >= args.min_tag)
    H = H.take(artists, mode=1).take(tags, mode=2)
    artist_names = bunch.artist_names[artists]
    tag_names = bunch.tag_names[tags]
    print(
        f"{H}\n(users × artists × tags × months; artists tagged ≥ {args.min_artist} times, "
        f"tags used ≥ {args.min_tag} times; friendship graph on the users)"
    )

    # Random initial factors: a truncated SVD of each unfolding (init="svd") would need the
    # right singular vectors of a 1892 × (2184·387·73) matrix, gigabytes for nothing.
    model = HyperLearnDecomposition(
        rank=args.rank, lam=args.lam, max_iter=args.max_iter, init="random", random_state=0
    )
    tic = time.perf_counter()
    model.fit(H)
    print(
        f"\nfitted in {time.perf_counter() - tic:.1f} s, {model.n_iter_} sweeps; "
        f"J {model.loss_history_[0]:.1f} → {model.loss_history_[-1]:.1f} "
        f"(‖X‖² = {float(H.tensor.data @ H.tensor.data):.0f})"
    )
    for name, a in zip(("users", "artists", "tags", "months"), model.factors_, strict=True):
        print(f"  {name:8s} {a.shape}")

    # Rarely tagged artists have small, noisy factors: search among the most tagged ones.
    counts = np.bincount(H.tensor.coords[1], minlength=H.shape[1])
    popular = np.argsort(-counts)[: args.top]
    unit = normalize(model.factors_[1][popular])
    print(f"\nnearest artists in the learned space (cosine, among the {args.top} most tagged):")
    index = {n: i for i, n in enumerate(artist_names) if n is not None}
    for name in FAMOUS:
        if name not in index or index[name] not in popular:
            continue
        sims = unit @ unit[np.flatnonzero(popular == index[name])[0]]
        near = [artist_names[popular[j]] for j in np.argsort(-sims)[1:6]]
        print(f"  {name}: {', '.join(str(n) for n in near)}")

    genre_index = {
        g: int(np.flatnonzero(tag_names == t)[0])
        for g, t in enumerate(GENRES)
        if (tag_names == t).any()
    }
    fig, axes = plt.subplots(1, 2, figsize=(13, 6))
    for ax, mode, what in ((axes[0], 1, "artists"), (axes[1], 0, "users")):
        points = PCA(2, random_state=0).fit_transform(normalize(model.factors_[mode]))
        genre = dominant_genre(H, mode, genre_index)
        ax.scatter(*points[genre < 0].T, s=4, c="lightgrey", label="no genre tag")
        for g in sorted(genre_index):
            sel = genre == g
            ax.scatter(*points[sel].T, s=6, label=GENRES[g], color=plt.cm.tab10(g))
        if mode == 1:
            for name in FAMOUS:
                if name in index:
                    ax.annotate(name, points[index[name]], fontsize=8)
        ax.set_title(f"{what} ({points.shape[0]}): PCA of HyperLearn factors, rank {args.rank}")
        ax.set_xlabel("PC 1")
        ax.set_ylabel("PC 2")
    axes[0].legend(markerscale=3, fontsize=8, title="most frequent genre tag")
    fig.tight_layout()
    fig.savefig(args.output, dpi=120)
    print(f"\nfigure saved to {args.output}")


if __name__ == "__main__":
    main()
