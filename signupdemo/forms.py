"""Signup, login and 'send a fresh link' forms.

Accounts use Django's stock User with the lowercased address as username, so
the database's unique username index is what makes addresses unique.
"""

from django import forms
from django.contrib.auth import get_user_model, password_validation
from django.contrib.auth.forms import AuthenticationForm

User = get_user_model()

# User.username holds the address, and it is 150 characters long.
MAX_EMAIL_LENGTH = User._meta.get_field("username").max_length


def normalize_email(address: str) -> str:
    """One spelling per mailbox: addresses are compared and stored lowercased."""
    return address.strip().lower()


class NoColonMixin:
    """Labels read 'Email', not 'Email:'."""

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("label_suffix", "")
        super().__init__(*args, **kwargs)


class SignupForm(NoColonMixin, forms.Form):
    email = forms.EmailField(
        label="Email",
        max_length=MAX_EMAIL_LENGTH,
        widget=forms.EmailInput(attrs={"autocomplete": "email", "autofocus": True}),
    )
    name = forms.CharField(
        label="Your name",
        max_length=User._meta.get_field("first_name").max_length,
        widget=forms.TextInput(attrs={"autocomplete": "name"}),
    )
    password = forms.CharField(
        label="Password",
        strip=False,
        widget=forms.PasswordInput(attrs={"autocomplete": "new-password"}),
        help_text=password_validation.password_validators_help_text_html(),
    )

    error_messages = {
        "duplicate": "An account with this address already exists.",
    }

    def clean_email(self):
        email = normalize_email(self.cleaned_data["email"])
        if User.objects.filter(username=email).exists():
            raise forms.ValidationError(self.error_messages["duplicate"], code="duplicate")
        return email

    def clean(self):
        cleaned = super().clean()
        password = cleaned.get("password")
        if password:
            # Validators compare the password with the address and name too.
            candidate = User(
                username=cleaned.get("email", ""),
                email=cleaned.get("email", ""),
                first_name=cleaned.get("name", ""),
            )
            try:
                password_validation.validate_password(password, candidate)
            except forms.ValidationError as error:
                self.add_error("password", error)
        return cleaned

    def add_duplicate_error(self):
        """For the race the form cannot see: another request took the address first."""
        self.add_error(
            "email", forms.ValidationError(self.error_messages["duplicate"], code="duplicate")
        )


class LoginForm(NoColonMixin, AuthenticationForm):
    username = forms.EmailField(
        label="Email",
        max_length=MAX_EMAIL_LENGTH,
        widget=forms.EmailInput(attrs={"autocomplete": "email", "autofocus": True}),
    )

    error_messages = {
        **AuthenticationForm.error_messages,
        "invalid_login": (
            "That email and password do not match an active account. "
            "If you have just signed up, confirm your address first."
        ),
    }

    def clean_username(self):
        return normalize_email(self.cleaned_data["username"])


class ResendForm(NoColonMixin, forms.Form):
    email = forms.EmailField(
        label="Email",
        max_length=254,
        widget=forms.EmailInput(attrs={"autocomplete": "email"}),
    )

    def clean_email(self):
        return normalize_email(self.cleaned_data["email"])
