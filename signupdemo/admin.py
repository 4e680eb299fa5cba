"""Admin pages for the site's own records (the queue has its own admin in jobs)."""

from django.contrib import admin

from .models import OutboxMessage, RateLimitCounter, ScheduledEmail, Signup


@admin.register(Signup)
class SignupAdmin(admin.ModelAdmin):
    list_display = ["user", "created_at", "confirmed_at"]
    list_filter = [("confirmed_at", admin.EmptyFieldListFilter)]
    search_fields = ["user__username", "user__first_name"]
    raw_id_fields = ["user"]
    date_hierarchy = "created_at"


@admin.register(ScheduledEmail)
class ScheduledEmailAdmin(admin.ModelAdmin):
    list_display = ["id", "user", "kind", "state", "run_at", "finished_at", "job"]
    list_filter = ["kind", "state"]
    search_fields = ["user__username"]
    raw_id_fields = ["user", "job"]
    date_hierarchy = "run_at"


@admin.register(OutboxMessage)
class OutboxMessageAdmin(admin.ModelAdmin):
    list_display = ["subject", "to", "sent_at", "mailer"]
    search_fields = ["to", "subject"]
    raw_id_fields = ["user"]
    date_hierarchy = "sent_at"
    readonly_fields = [f.name for f in OutboxMessage._meta.fields]

    def has_add_permission(self, request):
        return False


@admin.register(RateLimitCounter)
class RateLimitCounterAdmin(admin.ModelAdmin):
    list_display = ["scope", "key_hash", "window_start", "count"]
    list_filter = ["scope"]
    readonly_fields = ["scope", "key_hash", "window_start", "count"]

    def has_add_permission(self, request):
        return False
