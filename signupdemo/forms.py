"""Signup, login and 'send a fresh link' forms.

Accounts use Django's stock User with the lowercased address as username, so
the database's unique username index is what makes addresses unique.
"""

from django import forms
from django.contrib.auth import get_user_model, password_validation
from django.contrib.auth.forms import AuthenticationForm, PasswordResetForm, SetPasswordForm
from django.core.validators import MaxLengthValidator

User = get_user_model()

# User.username holds the address, and it is 150 characters long.
MAX_EMAIL_LENGTH = User._meta.get_field("username").max_length


def normalize_email(address: str) -> str:
    """One spelling per mailbox: addresses are compared and stored in one canonical form.

    The local part is lowercased. The domain goes through IDNA, as Django's
    mailers encode it when sending, so every spelling of one mail domain
    (``EXAMPLE.com``, the same in full-width letters, punycode
    ``xn--bcher-kva.example`` and ``bücher.example``, composed or not) is
    stored as the same text: the unique username index, the duplicate check
    and the per-address email limit then see one mailbox, not several.
    """
    local, at, domain = address.strip().rpartition("@")
    if not at:
        return address.strip().lower()
    try:
        domain = domain.encode("idna").decode("idna")
    except UnicodeError:
        # Not a valid IDNA domain (e.g. an address literal): compare it as typed.
        domain = domain.lower()
    return f"{local.lower()}@{domain.lower()}"


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
        # Normalising may lengthen a domain ("㎏" is "kg"); the column's limit still holds.
        if len(email) > MAX_EMAIL_LENGTH:
            MaxLengthValidator(MAX_EMAIL_LENGTH)(email)
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

    #: An account still waiting for its address to be confirmed, whose
    #: password was right: not logged in, but let watch its emails.
    unconfirmed_user = None

    def clean_username(self):
        return normalize_email(self.cleaned_data["username"])

    def clean(self):
        try:
            return super().clean()
        except forms.ValidationError:
            # Django's backend refuses inactive accounts whatever the password.
            self.unconfirmed_user = self._unconfirmed_account()
            if self.unconfirmed_user is None:
                raise
            return self.cleaned_data

    def _unconfirmed_account(self):
        username = self.cleaned_data.get("username")
        password = self.cleaned_data.get("password")
        if not username or not password:
            return None
        # Only signups never confirmed: an account staff switched off stays off.
        user = User.objects.filter(
            username=username, is_active=False, signup__confirmed_at__isnull=True
        ).first()
        if user is not None and user.check_password(password):
            return user
        return None


class ResendForm(NoColonMixin, forms.Form):
    email = forms.EmailField(
        label="Email",
        max_length=254,
        widget=forms.EmailInput(attrs={"autocomplete": "email"}),
    )

    def clean_email(self):
        return normalize_email(self.cleaned_data["email"])


class SitePasswordResetForm(NoColonMixin, PasswordResetForm):
    """Django's form for the address; the view queues the email (signup.send_password_reset)."""

    email = forms.EmailField(
        label="Email",
        max_length=254,
        widget=forms.EmailInput(attrs={"autocomplete": "email", "autofocus": True}),
    )

    def clean_email(self):
        return normalize_email(self.cleaned_data["email"])


class SiteSetPasswordForm(NoColonMixin, SetPasswordForm):
    """The new password, validated as at signup."""
