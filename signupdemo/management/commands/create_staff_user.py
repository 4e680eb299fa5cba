"""Create (or update) a staff superuser who logs in at /login/ with an email address.

Two ways in, one rule for both (the address normalised as the login form
does, the password validated as at signup):

- from DJANGO_SUPERUSER_EMAIL and DJANGO_SUPERUSER_PASSWORD: app.json runs
  this after the first Heroku deploy; without the variables and without a
  terminal it does nothing, successfully;
- at a terminal (`make staff-user` locally), it asks for both.

Django's createsuperuser asks for a username as well, and a username typed
differently from the address (capitals, say) could not log in here.
"""

import getpass
import os
import sys

from django.contrib.auth import get_user_model
from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError
from django.core.validators import validate_email

from signupdemo.forms import normalize_email


class Command(BaseCommand):
    help = (
        "Create or update a staff superuser: from DJANGO_SUPERUSER_EMAIL and "
        "DJANGO_SUPERUSER_PASSWORD, else by asking at the terminal."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--no-input",
            action="store_false",
            dest="interactive",
            help="Never prompt; use only the environment variables.",
        )

    def handle(self, *args, interactive=True, **options):
        email = os.environ.get("DJANGO_SUPERUSER_EMAIL", "")
        password = os.environ.get("DJANGO_SUPERUSER_PASSWORD", "")
        User = get_user_model()
        if email and password:
            email = normalize_email(email)
            user = User.objects.filter(username=email).first() or User(username=email, email=email)
            try:
                validate_password(password, user)
            except ValidationError as error:
                raise CommandError(
                    f"DJANGO_SUPERUSER_PASSWORD: {' '.join(error.messages)}"
                ) from error
        elif interactive and sys.stdin.isatty():
            user, password = self._ask()
        else:
            self.stdout.write(
                "No staff user created: set DJANGO_SUPERUSER_EMAIL and DJANGO_SUPERUSER_PASSWORD, "
                "or run `python manage.py create_staff_user` at a terminal to be asked for them."
            )
            return
        created = user.pk is None
        user.is_staff = user.is_superuser = user.is_active = True
        user.set_password(password)
        user.save()
        self.stdout.write(
            f"Staff user {user.email} {'created' if created else 'updated'}: "
            "log in at /login/ for /admin/ and /jobs/."
        )

    def _ask(self):
        """Ask until the address is valid and the password passes the site's validators."""
        User = get_user_model()
        while True:
            email = normalize_email(input("Email: "))
            try:
                validate_email(email)
                break
            except ValidationError as error:
                self.stderr.write(f"Error: {' '.join(error.messages)}")
        user = User.objects.filter(username=email).first() or User(username=email, email=email)
        while True:
            password = getpass.getpass("Password: ")
            if getpass.getpass("Password (again): ") != password:
                self.stderr.write("Error: the two passwords differ.")
                continue
            try:
                validate_password(password, user)
            except ValidationError as error:
                self.stderr.write(f"Error: {' '.join(error.messages)}")
                continue
            return user, password
