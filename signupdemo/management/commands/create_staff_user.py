"""Create (or update) a staff superuser from DJANGO_SUPERUSER_EMAIL and _PASSWORD.

app.json runs this after the first Heroku deploy; it is idempotent and does
nothing, successfully, when the variables are not set.
"""

import os

from django.contrib.auth import get_user_model
from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError

from signupdemo.forms import normalize_email


class Command(BaseCommand):
    help = "Create a staff superuser from DJANGO_SUPERUSER_EMAIL and DJANGO_SUPERUSER_PASSWORD."

    def handle(self, *args, **options):
        email = normalize_email(os.environ.get("DJANGO_SUPERUSER_EMAIL", ""))
        password = os.environ.get("DJANGO_SUPERUSER_PASSWORD", "")
        if not email or not password:
            self.stdout.write(
                "No staff user created: set DJANGO_SUPERUSER_EMAIL and DJANGO_SUPERUSER_PASSWORD, "
                "then run `python manage.py create_staff_user`."
            )
            return
        User = get_user_model()
        user = User.objects.filter(username=email).first() or User(username=email, email=email)
        try:
            validate_password(password, user)
        except ValidationError as error:
            raise CommandError(f"DJANGO_SUPERUSER_PASSWORD: {' '.join(error.messages)}") from error
        created = user.pk is None
        user.is_staff = user.is_superuser = user.is_active = True
        user.set_password(password)
        user.save()
        self.stdout.write(f"Staff user {email} {'created' if created else 'updated'}.")
