"""The site's URLs. The jobs dashboard is mounted at /jobs/ for staff."""

from django.contrib import admin
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
    path("admin/", admin.site.urls),
    path("jobs/", include("jobs.urls")),
]
