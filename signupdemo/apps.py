from django.apps import AppConfig


class SignupDemoConfig(AppConfig):
    name = "signupdemo"
    verbose_name = "Signup demo"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self):
        from . import checks  # noqa: F401  (registers the system checks)
