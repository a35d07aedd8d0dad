from django import forms

from .models import Genre, Movie
from .services import RatingError, parse_score


class RatingForm(forms.Form):
    """One rating: which movie and how many stars (0.5 to 5 in half steps)."""

    movie = forms.ModelChoiceField(
        queryset=Movie.objects.all(), error_messages={"invalid_choice": "There is no such movie in the catalogue."}
    )
    score = forms.CharField(label="Your rating", error_messages={"required": "Choose a rating from 0.5 to 5 stars."})

    def clean_score(self) -> float:
        try:
            return parse_score(self.cleaned_data["score"])
        except RatingError as error:
            raise forms.ValidationError(str(error)) from error


class MovieChoiceForm(forms.Form):
    movie = forms.ModelChoiceField(
        queryset=Movie.objects.all(), error_messages={"invalid_choice": "There is no such movie in the catalogue."}
    )


SEARCH_MAX_CHARACTERS = 200


class CatalogueFilterForm(forms.Form):
    # No maxlength in the page: a longer search is answered with a message, never cut short without a word.
    q = forms.CharField(
        label="Title",
        required=False,
        widget=forms.TextInput(attrs={"type": "search", "autocomplete": "off", "placeholder": "Search titles"}),
    )
    genre = forms.ModelChoiceField(
        label="Genre", queryset=Genre.objects.order_by("name"), required=False, empty_label="All genres"
    )
    year = forms.IntegerField(label="Year", required=False, min_value=1870, max_value=2100)
    sort = forms.ChoiceField(
        label="Sort by",
        required=False,
        choices=[
            ("", "Best match"),
            ("popular", "Most rated"),
            ("best", "Best rated"),
            ("newest", "Newest"),
            ("title", "Title"),
        ],
        # Django's default message repeats the value sent, whatever its size.
        error_messages={"invalid_choice": "Sort by most rated, best rated, newest or title."},
    )

    def clean_q(self) -> str:
        query = self.cleaned_data["q"]
        if len(query) > SEARCH_MAX_CHARACTERS:
            raise forms.ValidationError(
                f"Search with at most {SEARCH_MAX_CHARACTERS} characters (this one has {len(query):,}).",
                code="max_length",
            )
        return query
