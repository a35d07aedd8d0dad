from django import forms
from django.contrib.auth.forms import AuthenticationForm, UserCreationForm
from django.core.validators import MinValueValidator

from .models import User
from .services import RESERVED_USERNAME_MESSAGE, username_is_reserved


class LoginForm(AuthenticationForm):
    error_messages = {
        **AuthenticationForm.error_messages,
        # One message for an unknown username and for a wrong password: it must not tell which accounts exist.
        "invalid_login": "That username and password do not match. Check them and try again.",
        "inactive": "That username and password do not match. Check them and try again.",
    }


class SignupForm(UserCreationForm):
    class Meta(UserCreationForm.Meta):
        model = User
        fields = ("username", "email")
        labels = {"email": "E-mail"}
        help_texts = {"email": "Only used to reset your password if you forget it."}

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["username"].widget.attrs.update(autocomplete="username", autofocus=True)
        self.fields["email"].widget.attrs.update(autocomplete="email")

    def clean_username(self):
        username = super().clean_username()  # None when the name is taken (Django has already said so)
        if username and username_is_reserved(username):
            raise forms.ValidationError(RESERVED_USERNAME_MESSAGE, code="reserved")
        return username


class ProfileForm(forms.ModelForm):
    # Changing the e-mail address redirects password resets, so it needs the password (an unattended
    # signed-in browser must not be enough to take the account over).
    current_password = forms.CharField(
        label="Current password",
        required=False,
        strip=False,
        widget=forms.PasswordInput(attrs={"autocomplete": "current-password"}),
        help_text="Needed only to change your e-mail address.",
    )

    class Meta:
        model = User
        fields = ("email", "age", "gender", "occupation", "zip_code")
        labels = {"email": "E-mail", "zip_code": "ZIP or postal code"}
        help_texts = {
            "email": "Only used to reset your password.",
            "age": "In years.",
        }

    def __init__(self, *args, occupation_suggestions: list[str] | None = None, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["gender"].choices = [("", "Prefer not to say"), *User.Gender.choices]
        self.fields["email"].widget.attrs.update(autocomplete="email")
        self.fields["zip_code"].widget.attrs.update(autocomplete="postal-code")
        # The model allows 0 (a positive integer field); nobody rating movies is 0 years old.
        self.fields["age"].validators.append(MinValueValidator(1))
        self.fields["age"].widget.attrs["min"] = 1
        if occupation_suggestions:
            # A datalist suggests the MovieLens occupations while still allowing anything.
            self.fields["occupation"].widget.attrs["list"] = "occupation-suggestions"
        self.occupation_suggestions = occupation_suggestions or []

    def clean(self):
        cleaned = super().clean()
        new_email = User.objects.normalize_email(cleaned.get("email") or "")
        if new_email != (self.instance.email or "") and not self.instance.check_password(
            cleaned.get("current_password") or ""
        ):
            self.add_error("current_password", "Enter your current password to change your e-mail address.")
        return cleaned

    def profile_values(self) -> dict:
        return {name: value for name, value in self.cleaned_data.items() if name != "current_password"}


class DeleteAccountForm(forms.Form):
    password = forms.CharField(
        label="Your password",
        strip=False,
        widget=forms.PasswordInput(attrs={"autocomplete": "current-password"}),
    )

    def __init__(self, *args, user: User, **kwargs):
        super().__init__(*args, **kwargs)
        self.user = user

    def clean_password(self):
        password = self.cleaned_data["password"]
        if not self.user.check_password(password):
            raise forms.ValidationError("That is not your password.", code="password_incorrect")
        return password
