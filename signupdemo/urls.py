"""The site's URLs. The jobs dashboard is mounted at /jobs/ for staff."""

from django.contrib import admin
from django.contrib.auth.views import PasswordResetCompleteView, PasswordResetDoneView
from django.urls import include, path

from . import views

urlpatterns = [
    path("", views.home, name="home"),
    path("signup/", views.signup_view, name="signup"),
    path("confirm/again/", views.resend, name="resend"),
    path("confirm/<str:token>/", views.confirm, name="confirm"),
    path("watch/", views.watch, name="watch"),
    path("watch/status.json", views.watch_status, name="watch_status"),
    path("outbox/<int:pk>/", views.outbox_message, name="outbox_message"),
    path("login/", views.SiteLoginView.as_view(), name="login"),
    path("logout/", views.SiteLogoutView.as_view(), name="logout"),
    path("password-reset/", views.SitePasswordResetView.as_view(), name="password_reset"),
    path(
        "password-reset/sent/",
        PasswordResetDoneView.as_view(template_name="registration/password_reset_done.html"),
        name="password_reset_done",
    ),
    path(
        "password-reset/<uidb64>/<token>/",
        views.SitePasswordResetConfirmView.as_view(),
        name="password_reset_confirm",
    ),
    path(
        "password-reset/done/",
        PasswordResetCompleteView.as_view(
            template_name="registration/password_reset_complete.html"
        ),
        name="password_reset_complete",
    ),
    path("admin/", admin.site.urls),
    path("jobs/", include("jobs.urls")),
]
