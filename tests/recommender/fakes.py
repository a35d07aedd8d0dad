"""A fake model for the recommender's tests: rankings, predicted stars and similar movies that a test chooses."""

import numpy as np

from recommender.ml.inference import Recommendation
from tests.movies.factories import RatingFactory


class FakeRecommender:
    """Fixed ranking scores and predicted stars, item vectors and an optional similar-items table: the parts of
    VAERecommender that recommendations.py uses, with outputs a test can choose."""

    def __init__(self, scores, stars, *, embeddings=None, table=None):
        self.scores, self.stars = np.asarray(scores, float), np.asarray(stars, float)
        self.n_items = len(self.scores)
        self.embeddings = np.eye(self.n_items, dtype=np.float32) if embeddings is None else np.asarray(embeddings)
        self.weights = {}
        if table is not None:
            self.weights["similar_items_neighbours"], self.weights["similar_items_scores"] = table

    def recommend(self, ratings, n=10, exclude_rated_items=True, exclude_items=()):
        left_out = {*(ratings if exclude_rated_items else ()), *exclude_items}
        order = [int(i) for i in np.argsort(-self.scores, kind="stable") if i not in left_out]
        return [
            Recommendation(item=i, score=float(self.scores[i]), predicted_rating=float(self.stars[i]))
            for i in order[:n]
        ]

    def item_embeddings(self):
        return self.embeddings

    def similar_items(self, item, n=10):
        neighbours, scores = self.weights["similar_items_neighbours"], self.weights["similar_items_scores"]
        return [(int(j), float(s)) for j, s in zip(neighbours[item], scores[item]) if j >= 0][:n]


def table_from(pairs: dict[tuple[int, int], float], n_items: int, k: int = 4):
    """A similar-items table (neighbours, scores) from {(movie, neighbour): score}, best first, padded with -1."""
    neighbours, scores = np.full((n_items, k), -1, np.int32), np.zeros((n_items, k), np.float32)
    for item in range(n_items):
        row = sorted(((s, j) for (i, j), s in pairs.items() if i == item), reverse=True)[:k]
        for position, (score, other) in enumerate(row):
            neighbours[item, position], scores[item, position] = other, score
    return neighbours, scores


def rate(user, movies, stars_by_column):
    for column, stars in stars_by_column.items():
        RatingFactory(user=user, movie=movies[column], score=stars)
