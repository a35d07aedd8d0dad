"""Signals the catalogue sends; apps that build on movies (the recommender) listen, movies imports none of them."""

from django.dispatch import Signal

# Sent after the commit of a rating change (set or cleared), so a listener reads the committed ratings.
ratings_changed = Signal()
