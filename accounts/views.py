from django.conf import settings
from django.contrib import messages
from django.contrib.auth import login, logout
from django.contrib.auth import views as auth_views
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import redirect, render
from django.urls import reverse_lazy
from django.utils.decorators import method_decorator
from django.views.decorators.http import require_http_methods
from django.views.generic import FormView

from .forms import DeleteAccountForm, LoginForm, ProfileForm, SignupForm
from .selectors import user_occupation_suggestions, user_rating_count
from .services import user_delete, user_login_failures_reset, user_sign_up, user_update_profile
from .throttling import limited, member_key

# The backend that checks passwords; named when logging in a user who just signed up, since several are configured.
PASSWORD_BACKEND = "django.contrib.auth.backends.ModelBackend"


@method_decorator(limited("login"), name="post")
class LoginView(auth_views.LoginView):
    template_name = "accounts/login.html"
    authentication_form = LoginForm
    redirect_authenticated_user = True

    def form_valid(self, form):
        response = super().form_valid(form)
        messages.success(self.request, f"Welcome back, {form.get_user().get_username()}.")
        return response


class LogoutView(auth_views.LogoutView):
    """POST only (Django's LogoutView answers a GET with 405), so a link or an image cannot log anyone out."""

    def post(self, request, *args, **kwargs):
        response = super().post(request, *args, **kwargs)
        messages.info(request, "You are logged out. See you soon.")
        return response


@method_decorator(limited("signup"), name="post")
class SignupView(auth_views.RedirectURLMixin, FormView):
    template_name = "accounts/signup.html"
    form_class = SignupForm
    next_page = settings.LOGIN_REDIRECT_URL

    def dispatch(self, request, *args, **kwargs):
        if request.user.is_authenticated:
            return HttpResponseRedirect(self.get_success_url())
        return super().dispatch(request, *args, **kwargs)

    def form_valid(self, form):
        try:
            user = user_sign_up(
                username=form.cleaned_data["username"],
                email=form.cleaned_data.get("email", ""),
                password=form.cleaned_data["password1"],
            )
        except ValidationError as error:
            form.add_error(None, error)
            return self.form_invalid(form)
        login(self.request, user, backend=PASSWORD_BACKEND)
        messages.success(self.request, f"Welcome to MyNextMovie, {user.get_username()}!")
        return HttpResponseRedirect(self.get_success_url())

    def get_context_data(self, **kwargs):
        return super().get_context_data(**kwargs, next=self.get_redirect_url())


def _posted_data(request: HttpRequest):
    # A bound form on POST (even an empty one), an unbound one on GET.
    return request.POST if request.method == "POST" else None


@login_required
@require_http_methods(["GET", "HEAD", "POST"])
@limited("profile", key=member_key)  # an e-mail change re-checks the password
def profile(request: HttpRequest) -> HttpResponse:
    # Always the signed-in user's own profile: there is no URL that names another account.
    suggestions = user_occupation_suggestions()
    form = ProfileForm(_posted_data(request), instance=request.user, occupation_suggestions=suggestions)
    if request.method == "POST" and form.is_valid():
        user_update_profile(user=request.user, **form.profile_values())
        messages.success(request, "Your profile is saved.")
        return redirect("accounts:profile")
    context = {"form": form, "rating_count": user_rating_count(user=request.user)}
    return render(request, "accounts/profile.html", context)


@login_required
@require_http_methods(["GET", "HEAD", "POST"])
@limited("password_check", key=member_key)
def delete_account(request: HttpRequest) -> HttpResponse:
    form = DeleteAccountForm(_posted_data(request), user=request.user)
    if request.method == "POST" and form.is_valid():
        user_delete(user=request.user)
        logout(request)
        messages.info(request, "Your account and all your ratings are deleted. Thank you for having been with us.")
        return redirect("movies:home")
    context = {"form": form, "rating_count": user_rating_count(user=request.user)}
    return render(request, "accounts/delete.html", context)


@method_decorator(limited("password_check", key=member_key), name="post")
class PasswordChangeView(auth_views.PasswordChangeView):
    template_name = "accounts/password_change.html"
    success_url = reverse_lazy("accounts:password_change_done")


class PasswordChangeDoneView(auth_views.PasswordChangeDoneView):
    template_name = "accounts/password_change_done.html"


@method_decorator(limited("password_reset"), name="post")
class PasswordResetView(auth_views.PasswordResetView):
    # The same "done" page whether or not the address belongs to an account: nothing tells which exist.
    template_name = "accounts/password_reset.html"
    email_template_name = "accounts/email/password_reset_email.txt"
    subject_template_name = "accounts/email/password_reset_subject.txt"
    success_url = reverse_lazy("accounts:password_reset_done")


class PasswordResetDoneView(auth_views.PasswordResetDoneView):
    template_name = "accounts/password_reset_done.html"


class PasswordResetConfirmView(auth_views.PasswordResetConfirmView):
    template_name = "accounts/password_reset_confirm.html"
    success_url = reverse_lazy("accounts:password_reset_complete")

    def form_valid(self, form):
        # Whoever got the e-mail owns the account: let them log in now even if they were locked out.
        user_login_failures_reset(user=form.user)
        return super().form_valid(form)


class PasswordResetCompleteView(auth_views.PasswordResetCompleteView):
    template_name = "accounts/password_reset_complete.html"


def lockout_response(
    request: HttpRequest, original_response: HttpResponse | None = None, credentials: dict | None = None
) -> HttpResponse:
    """django-axes' lockout page (settings.AXES_LOCKOUT_CALLABLE): how long to wait, and a way out."""
    cooloff = settings.AXES_COOLOFF_TIME
    cooloff_minutes = max(1, round(cooloff.total_seconds() / 60)) if cooloff else None
    return render(
        request,
        "accounts/lockout.html",
        {"cooloff_minutes": cooloff_minutes},
        status=settings.AXES_HTTP_RESPONSE_CODE,
    )
