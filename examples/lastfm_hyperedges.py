"""
Last.fm 4th-order hyperedges: users × artists × tags × months
=============================================================

Every tag assignment of the HetRec 2011 Last.fm 2K data ("user u tagged artist a with tag t in
month m") is one hyperedge of a binary 4th-order tensor. The user mode carries the users'
friendship graph; artists, tags and months have none. :class:`~skhyperlearn.HyperLearnDecomposition`
learns one representation per user, artist, tag and month from all of it at once.

The script keeps the artists and tags used often enough to say something (``--min-artist``,
``--min-tag``), fits, and prints

- how much of the tensor the model explains (J against ‖X‖², the value of J at all-zero
  factors),
- for a few well-known artists, their nearest artists in the learned space (cosine similarity),
  and says which asked-for artists are missing or too rarely tagged to be searched,
- how often an artist's nearest neighbours share its most frequent genre tag, against chance,

and draws a 2-D PCA of the (row-normalised) artist and user representations, each artist
coloured by the genre tag it most often receives and each user by the genre tag they use most.

**Read the numbers as they are.** With the settings below, least squares on a binary tensor in
which almost every cell is an absent hyperedge, the model explains a small share of ‖X‖² and
the genres are mixed in the learned space (improving that is the work of the package's issue 8).
All model settings are in ``MODEL`` at the top of the script, to be switched in one place.

The data are read from a folder holding ``hetrec2011-lastfm-2k/``: ``--data``, else the
``SKHYPERLEARN_DATA`` environment variable, else ``../shared/data`` next to the repository. The
figure needs matplotlib (``pip install -e ".[examples]"``); without it the script prints its
numbers and says so.

Run (about a minute, half of it loading; ``--quick``: fewer sweeps on fewer artists and tags)::

    python examples/lastfm_hyperedges.py
    python examples/lastfm_hyperedges.py --quick --out /tmp/lastfm.png
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

import numpy as np
from sklearn.decomposition import PCA
from sklearn.preprocessing import normalize

from skhyperlearn import HyperLearnDecomposition
from skhyperlearn.datasets import load_lastfm2k

try:
    HERE = Path(__file__).resolve().parent
except NameError:  # sphinx-gallery runs the examples from their folder, without __file__
    HERE = Path.cwd()

# The model, in one place. Random initial factors: a truncated SVD of each unfolding
# (init="svd") would need the right singular vectors of a 1892 × (2184·387·73) matrix.
MODEL = {"rank": 16, "lam": 1.0, "max_iter": 50, "init": "random", "random_state": 0}
# --quick: the same model with fewer sweeps, on the more often tagged artists and tags.
QUICK = {"max_iter": 8, "min_artist": 60, "min_tag": 150}

GENRES = ("rock", "pop", "electronic", "metal", "hip-hop", "jazz", "indie", "classical")
FAMOUS = ("Metallica", "Britney Spears", "Daft Punk", "Miles Davis", "Radiohead")


def default_data_home() -> Path:
    env = os.environ.get("SKHYPERLEARN_DATA")
    return Path(env) if env else HERE.parent.parent / "shared" / "data"


def dominant_genre(H, mode: int, genre_tag: dict[int, int]) -> np.ndarray:
    """Per entity of ``mode``: index in GENRES of its most frequent genre tag, -1 if none."""
    coords = H.tensor.coords
    lookup = np.full(H.shape[2], -1)
    for g, t in genre_tag.items():
        lookup[t] = g
    g = lookup[coords[2]]
    keep = g >= 0
    counts = np.zeros((H.shape[mode], len(GENRES)))
    np.add.at(counts, (coords[mode][keep], g[keep]), 1.0)
    return np.where(counts.sum(1) > 0, counts.argmax(1), -1)


def genre_agreement(factors: np.ndarray, genre: np.ndarray, k: int = 5) -> tuple[float, float]:
    """Share of each genre-tagged artist's k nearest (cosine) sharing its genre, and chance."""
    has = np.flatnonzero(genre >= 0)
    unit = normalize(factors[has])
    sims = unit @ unit.T
    np.fill_diagonal(sims, -np.inf)
    near = np.argsort(-sims, axis=1)[:, :k]
    same = float(np.mean(genre[has][near] == genre[has][:, None]))
    share = np.bincount(genre[has], minlength=len(GENRES)) / len(has)
    return same, float(share @ share)


def plot(H, model, names, genre_tag, path: Path, rank: int):
    """PCA of the artist and user factors coloured by genre; None when matplotlib is absent."""
    try:
        import matplotlib.pyplot as plt
    except ImportError:
        print("\nno figure: matplotlib is not installed (pip install -e '.[examples]')")
        return None
    index = {n: i for i, n in enumerate(names) if n is not None}
    fig, axes = plt.subplots(1, 2, figsize=(13, 6))
    for ax, mode, what in ((axes[0], 1, "artists"), (axes[1], 0, "users")):
        points = PCA(2, random_state=0).fit_transform(normalize(model.factors_[mode]))
        genre = dominant_genre(H, mode, genre_tag)
        ax.scatter(*points[genre < 0].T, s=4, c="lightgrey", label="no genre tag")
        for g in sorted(genre_tag):
            sel = genre == g
            ax.scatter(*points[sel].T, s=6, label=GENRES[g], color=plt.cm.tab10(g))
        if mode == 1:
            for name in FAMOUS:
                if name in index:
                    ax.annotate(name, points[index[name]], fontsize=8)
        ax.set_title(f"{what} ({points.shape[0]}): PCA of HyperLearn factors, rank {rank}")
        ax.set_xlabel("PC 1")
        ax.set_ylabel("PC 2")
    axes[0].legend(markerscale=3, fontsize=8, title="most frequent genre tag")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)
    print(f"\nfigure saved to {path}")
    return fig


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Last.fm 4th-order hyperedges")
    parser.add_argument("--data", type=Path, default=None, help="folder holding the data")
    parser.add_argument(
        "--out",
        type=Path,
        default=HERE / "_out" / "lastfm_representations.png",
        help="where the figure goes (default: examples/_out/lastfm_representations.png)",
    )
    parser.add_argument("--quick", action="store_true", help="fewer sweeps, artists and tags")
    parser.add_argument("--min-artist", type=int, default=20, help="keep artists tagged ≥ this")
    parser.add_argument("--min-tag", type=int, default=50, help="keep tags used ≥ this")
    parser.add_argument("--top", type=int, default=300, help="artists searched for neighbours")
    args = parser.parse_args(argv)
    model_params = dict(MODEL)
    if args.quick:
        model_params["max_iter"] = QUICK["max_iter"]
        args.min_artist, args.min_tag = QUICK["min_artist"], QUICK["min_tag"]

    try:
        bunch = load_lastfm2k(args.data or default_data_home(), order=4)
    except FileNotFoundError as exc:
        print(f"Last.fm data not found: {exc}")
        return
    H = bunch.hypergraph
    coords = H.tensor.coords
    artists = np.flatnonzero(np.bincount(coords[1], minlength=H.shape[1]) >= args.min_artist)
    tags = np.flatnonzero(np.bincount(coords[2], minlength=H.shape[2]) >= args.min_tag)
    H = H.take(artists, mode=1).take(tags, mode=2)
    names = bunch.artist_names[artists]
    tag_names = bunch.tag_names[tags]
    print(
        f"{H}\n(users × artists × tags × months; artists tagged ≥ {args.min_artist} times, "
        f"tags used ≥ {args.min_tag} times; friendship graph on the users)"
    )

    model = HyperLearnDecomposition(**model_params)
    print(f"\nmodel: {model}")
    tic = time.perf_counter()
    model.fit(H)
    norm2 = float(H.tensor.data @ H.tensor.data)
    j_end = model.loss_history_[-1]
    print(
        f"fitted in {time.perf_counter() - tic:.1f} s, {model.n_iter_} sweeps; "
        f"J {model.loss_history_[0]:,.1f} → {j_end:,.1f}.\n"
        f"‖X‖² = {norm2:,.0f} is J at all-zero factors (λ‖X‖² with λ = {model_params['lam']}): "
        f"the model explains {1 - j_end / (model_params['lam'] * norm2):.1%} of it "
        "(J also holds the graph term, so this share is a lower bound on the fit)."
    )
    for name, a in zip(("users", "artists", "tags", "months"), model.factors_, strict=True):
        print(f"  {name:8s} {a.shape}")

    # Rarely tagged artists have small, noisy factors: search among the most tagged ones.
    counts = np.bincount(H.tensor.coords[1], minlength=H.shape[1])
    popular = np.argsort(-counts)[: args.top]
    unit = normalize(model.factors_[1][popular])
    index = {n: i for i, n in enumerate(names) if n is not None}
    print(f"\nnearest artists in the learned space (cosine, among the {args.top} most tagged):")
    for name in FAMOUS:
        if name not in index:
            print(
                f"  {name}: absent (not in the data, or tagged fewer than {args.min_artist} times)"
            )
            continue
        where = np.flatnonzero(popular == index[name])
        if where.size == 0:
            print(
                f"  {name}: {counts[index[name]]} hyperedges with the kept tags, not among the "
                f"{args.top} most tagged artists: not searched"
            )
            continue
        sims = unit @ unit[where[0]]
        near = [str(names[popular[j]]) for j in np.argsort(-sims)[1:6]]
        print(f"  {name}: {', '.join(near)}")

    genre_tag = {
        g: int(np.flatnonzero(tag_names == t)[0])
        for g, t in enumerate(GENRES)
        if (tag_names == t).any()
    }
    genre = dominant_genre(H, 1, genre_tag)
    same, chance = genre_agreement(model.factors_[1], genre)
    print(
        f"\n{int((genre >= 0).sum())} artists carry a genre tag; among each one's 5 nearest "
        f"artists (cosine), {same:.1%} share its genre, against {chance:.1%} for neighbours "
        "drawn at random with the genres' frequencies."
    )
    plot(H, model, names, genre_tag, args.out, model_params["rank"])


if __name__ == "__main__":
    main()
