import numpy as np
import pytest
import scipy.sparse as sp

from recommender.ml.data import rating_matrix
from recommender.ml.similarity import MEASURES, similar_items, similar_items_table
from tests.recommender_ml.conftest import synthetic_ratings


def random_stars(n_users: int = 60, n_items: int = 37, density: float = 0.3, seed: int = 3) -> sp.csr_matrix:
    rng = np.random.default_rng(seed)
    users, items = np.nonzero(rng.random((n_users, n_items)) < density)
    stars = rng.choice([1.0, 2.0, 3.0, 4.0, 5.0], size=len(users))
    return rating_matrix(users, items, stars, (n_users, n_items))


def dense_reference(matrix: sp.csr_matrix, measure: str, shrinkage: float, dislike_weight: float) -> np.ndarray:
    """The whole n x n score matrix in float64, written from the formulas (threshold 4 stars, dislikes <= 2)."""
    stars = matrix.toarray()
    rated = np.zeros(stars.shape, bool)
    rated[np.repeat(np.arange(matrix.shape[0]), np.diff(matrix.indptr)), matrix.indices] = True
    liked = (rated & (stars >= 4)).astype(float)
    disliked = (rated & (stars <= 2)).astype(float)
    n_users = matrix.shape[0]
    both = liked.T @ liked
    n = liked.sum(axis=0)
    with np.errstate(divide="ignore", invalid="ignore"):
        if measure == "phi":
            score = (n_users * both - np.outer(n, n)) / np.sqrt(np.outer(n * (n_users - n), n * (n_users - n)))
        elif measure == "cosine":
            score = both / np.sqrt(np.outer(n, n))
        elif measure == "jaccard":
            score = both / (n[:, None] + n[None, :] - both)
        else:
            score = both * n_users / np.outer(n, n)
        score = np.nan_to_num(score, nan=0.0, posinf=0.0, neginf=0.0) * both / (both + shrinkage)
        against = liked.T @ disliked + disliked.T @ liked
        score = np.where(both > 0, score * (both - dislike_weight * against) / both, 0.0)
    np.fill_diagonal(score, 0.0)
    return score


@pytest.mark.parametrize("measure", MEASURES)
@pytest.mark.parametrize("dislike_weight", [0.0, 0.5])
def test_blocks_give_the_dense_result(measure, dislike_weight):
    matrix = random_stars()
    k = 6
    settings = {"k": k, "measure": measure, "shrinkage": 3.0, "dislike_weight": dislike_weight, "liked_threshold": 4.0}
    neighbours, scores = similar_items_table(matrix, block_size=matrix.shape[1], **settings)
    for small in ({"block_size": 4}, {"max_block_entries": 3 * matrix.shape[1]}):  # several blocks either way
        blocked = similar_items_table(matrix, **small, **settings)
        np.testing.assert_array_equal(blocked[0], neighbours)
        np.testing.assert_array_equal(blocked[1], scores)

    reference = dense_reference(matrix, measure, 3.0, dislike_weight)
    assert neighbours.dtype == np.int32 and scores.dtype == np.float32 and neighbours.shape == (matrix.shape[1], k)
    for item in range(matrix.shape[1]):
        expected = np.sort(reference[item][reference[item] > 0])[::-1][:k]
        listed = neighbours[item] >= 0
        np.testing.assert_allclose(scores[item][listed], expected, rtol=1e-5)
        np.testing.assert_allclose(reference[item, neighbours[item][listed]], expected, rtol=1e-5)
    assert (neighbours >= 0).sum() > matrix.shape[1] * k // 2  # the comparison covered real neighbours


def test_a_movie_is_never_its_own_neighbour():
    # Identical liked columns: each movie's best match would be itself if the diagonal were not removed.
    stars = np.full((10, 4), 5.0)
    matrix = sp.csr_matrix(stars, dtype=np.float32)
    for measure in MEASURES:
        neighbours, _ = similar_items_table(matrix, k=3, measure=measure, shrinkage=0.0)
        assert all(item not in neighbours[item] for item in range(4))
    neighbours, _ = similar_items_table(random_stars(), k=10)
    assert not (neighbours == np.arange(neighbours.shape[0])[:, None]).any()


def test_rows_are_padded_where_few_movies_relate():
    # Movies 0-2 liked by the same users; movie 3 only disliked; movie 4 liked by someone else.
    users = [0, 0, 0, 1, 1, 1, 2, 2, 3]
    items = [0, 1, 2, 0, 1, 2, 3, 1, 4]
    stars = [5, 5, 4, 4, 5, 5, 1, 2, 5]
    matrix = rating_matrix(np.array(users), np.array(items), np.array(stars, float), (4, 5))
    neighbours, scores = similar_items_table(matrix, k=4, measure="cosine", shrinkage=0.0)
    assert sorted(neighbours[0][:2]) == [1, 2] and list(neighbours[0][2:]) == [-1, -1]
    assert list(scores[0][2:]) == [0.0, 0.0] and (scores[0][:2] > 0).all()
    assert list(neighbours[3]) == [-1] * 4 and list(neighbours[4]) == [-1] * 4  # no liked co-occurrence
    assert similar_items(neighbours, scores, 0, n=10) == [
        (int(j), pytest.approx(float(s))) for j, s in zip(neighbours[0][:2], scores[0][:2])
    ]
    assert similar_items(neighbours, scores, 3, n=5) == []


def test_neighbours_come_from_the_movies_own_taste_group():
    matrix = synthetic_ratings(n_users=120, n_items=40, ratings_per_user=20, seed=1)
    neighbours, _ = similar_items_table(matrix, k=8)
    group = np.arange(40) // 20
    for item in range(40):
        listed = neighbours[item][neighbours[item] >= 0]
        assert len(listed) >= 6
        assert (group[listed] == group[item]).mean() >= 0.9


def test_liked_threshold_defaults_to_the_relevance_threshold():
    # On half-star data 3.5 counts as liked: movies 0 and 1 are then liked together.
    matrix = rating_matrix(
        np.array([0, 0, 1, 1, 2]), np.array([0, 1, 0, 1, 2]), np.array([3.5, 3.5, 3.5, 3.5, 4.5]), (3, 3)
    )
    assert similar_items_table(matrix, k=1, measure="cosine", shrinkage=0.0)[0][0, 0] == 1
    assert similar_items_table(matrix, k=1, measure="cosine", shrinkage=0.0, liked_threshold=4.0)[0][0, 0] == -1


def test_bad_settings_are_refused():
    with pytest.raises(ValueError, match="measure"):
        similar_items_table(random_stars(), measure="pearson-ish")
    with pytest.raises(ValueError):
        similar_items_table(random_stars(), k=0)
