"""Small synthetic rating matrices; no Django, no database, no MovieLens files needed."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp

from recommender.ml.data import rating_matrix


def synthetic_ratings(n_users: int = 80, n_items: int = 50, ratings_per_user: int = 25, seed: int = 0) -> sp.csr_matrix:
    """Two taste groups that mostly watch, and like, opposite halves of the catalogue; stars 1..5."""
    rng = np.random.default_rng(seed)
    half = n_items // 2
    users, items, stars = [], [], []
    for user in range(n_users):
        likes_first_half = user % 2 == 0
        liked_half = np.arange(half) if likes_first_half else np.arange(half, n_items)
        other_half = np.arange(half, n_items) if likes_first_half else np.arange(half)
        n_liked = int(ratings_per_user * 0.8)
        chosen = np.concatenate(
            [
                rng.choice(liked_half, size=n_liked, replace=False),
                rng.choice(other_half, size=ratings_per_user - n_liked, replace=False),
            ]
        )
        for item in chosen:
            liked = (item < n_items // 2) == likes_first_half
            mean = 4.3 if liked else 1.8
            users.append(user)
            items.append(item)
            stars.append(float(np.clip(np.round(mean + rng.normal(0, 0.7)), 1, 5)))
    return rating_matrix(np.array(users), np.array(items), np.array(stars), (n_users, n_items))


@pytest.fixture(scope="session")
def ratings() -> sp.csr_matrix:
    return synthetic_ratings()
