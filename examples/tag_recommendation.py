"""
Which tags for this artist and user? Completing hyperedges
==========================================================

A tagging service stores each tag assignment "user u tagged artist a with tag t" as one
hyperedge of a (user, artist, tag) tensor. Recommending tags for a new post of user u on artist a
is *completion*: rank every tag for the partial hyperedge (u, a, ·).
:meth:`~skhyperlearn.HyperLearnDecomposition.recommend` does that from the fitted factors,
leaving out the tags already known for the post, and prints the scores.

The data are built in (no download): artists belong to one of four genres, each genre has its
tags, and each user mixes a favourite genre's tags with a few personal tags of their own. The
script

- holds out one tag of every post with at least two (``HyperedgeSplit``), fits on the rest,
- prints the top tags with their scores for a few (user, artist) posts,
- scores the held-out tags by filtered MRR and Hits@5 against the most popular tags,
- folds in a new artist that was never fitted (``fold_in(X, mode=1)``) and recommends tags for
  it, and lists the artists most similar to one artist (cosine of their factors).

Run (a few seconds; ``--quick``: fewer sweeps)::

    python examples/tag_recommendation.py
    python examples/tag_recommendation.py --quick
"""

from __future__ import annotations

import argparse

import numpy as np
import sparse

from skhyperlearn import HyperLearnDecomposition
from skhyperlearn.metrics import filtered_ranks, hits_at_k, mean_reciprocal_rank, rank_scores
from skhyperlearn.model_selection import HyperedgeSplit

GENRES = ["rock", "jazz", "electronic", "folk"]
N_USERS, N_ARTISTS, TAGS_PER_GENRE, PERSONAL_TAGS = 60, 40, 6, 8


def tag_names() -> list[str]:
    genre_tags = [f"{g}-{i}" for g in GENRES for i in range(TAGS_PER_GENRE)]
    return genre_tags + [f"personal-{i}" for i in range(PERSONAL_TAGS)]


def make_posts(rng: np.random.Generator, n_posts: int = 900):
    """(user, artist, tag) hyperedges: genre tags of the artist, plus the user's own tags."""
    artist_genre = rng.integers(0, len(GENRES), N_ARTISTS)
    user_tag = rng.integers(0, PERSONAL_TAGS, N_USERS) + len(GENRES) * TAGS_PER_GENRE
    rows = set()
    for _ in range(n_posts):
        user, artist = int(rng.integers(N_USERS)), int(rng.integers(N_ARTISTS))
        genre = artist_genre[artist]
        n_tags = int(rng.integers(1, 4))
        tags = genre * TAGS_PER_GENRE + rng.choice(TAGS_PER_GENRE, n_tags, replace=False)
        rows.update((user, artist, int(t)) for t in tags)
        if rng.random() < 0.5:
            rows.add((user, artist, int(user_tag[user])))
    return np.array(sorted(rows)), artist_genre


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Tag recommendation by hyperedge completion")
    parser.add_argument("--rank", type=int, default=8, help="components R (default 8)")
    parser.add_argument("--seed", type=int, default=0, help="random seed")
    parser.add_argument("--quick", action="store_true", help="20 sweeps instead of 100")
    args = parser.parse_args(argv)
    rng = np.random.default_rng(args.seed)
    names = tag_names()
    coords, artist_genre = make_posts(rng)
    shape = (N_USERS, N_ARTISTS, len(names))
    train, test = next(HyperedgeSplit(mode=2, n_splits=1, random_state=args.seed).split(coords))
    print(f"{len(coords)} tag assignments on {shape}; {len(test)} held out (one per post)")

    X = sparse.COO(coords[train].T, np.ones(len(train)), shape=shape)
    model = HyperLearnDecomposition(
        rank=args.rank, max_iter=20 if args.quick else 100, tol=0.0, random_state=args.seed
    ).fit(X)

    print("\nwhich tags for this artist and user (known tags of the post left out):")
    queries = coords[test][:3]
    ids, scores = model.recommend(queries, mode=2, k=4)
    for (user, artist, held), row, row_scores in zip(queries, ids, scores, strict=True):
        shown = ", ".join(f"{names[t]} {s:.3f}" for t, s in zip(row, row_scores, strict=True))
        genre = GENRES[artist_genre[artist]]
        print(f"  user {user:2d}, artist {artist:2d} ({genre}): {shown}  [held out: {names[held]}]")

    ranks = filtered_ranks(model, coords[test], 2)
    popular = np.bincount(coords[train, 2], minlength=len(names)).astype(float)
    known = np.zeros((len(test), len(names)), bool)
    for i, (u, a, _) in enumerate(coords[test]):
        known[i, coords[train][(coords[train, 0] == u) & (coords[train, 1] == a), 2]] = True
    base = rank_scores(np.tile(popular, (len(test), 1)), coords[test, 2], exclude=known)
    print("\nheld-out tags, filtered ranking:")
    for label, r in [("HyperLearn", ranks), ("most popular tags", base)]:
        print(f"  {label:18s} MRR {mean_reciprocal_rank(r):.3f}  Hits@5 {hits_at_k(r, 5):.3f}")

    # A new artist, never fitted: its tag assignments folded in with the other factors fixed.
    new = coords[coords[:, 1] == 0].copy()
    new[:, 1] = 0  # its own index among the new artists
    rows = model.fold_in(sparse.COO(new.T, np.ones(len(new)), shape=(N_USERS, 1, len(names))), 1)
    ids, scores = model.recommend([[5, 0, 0]], 2, k=3, rows={1: rows}, exclude=new)
    shown = ", ".join(f"{names[t]} {s:.3f}" for t, s in zip(ids[0], scores[0], strict=True))
    print(f"\nfolded-in artist ({GENRES[artist_genre[0]]}), user 5: {shown}")

    neighbours, cosine = model.similar(1, 0, k=3)
    same = [GENRES[artist_genre[a]] for a in neighbours]
    print(f"artists most similar to artist 0: {neighbours.tolist()} ({', '.join(same)}), "
          f"cosine {np.round(cosine, 3).tolist()}")  # fmt: skip


if __name__ == "__main__":
    main()
