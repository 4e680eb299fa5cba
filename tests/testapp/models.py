"""Models that jobs act on in the tests. Side effects go to Event rows, which
a test can read whether the job ran in-process or in a worker subprocess."""

from datetime import timedelta

from django.db import models
from django.utils import timezone

from jobs import handle_asynchronously


class Event(models.Model):
    name = models.CharField(max_length=100)
    data = models.JSONField(default=dict)
    created_at = models.DateTimeField(auto_now_add=True)

    @classmethod
    def names(cls):
        return list(cls.objects.order_by("id").values_list("name", flat=True))


class Photo(models.Model):
    title = models.CharField(max_length=100)

    def upload(self, size=1):
        """Upload the photo."""
        Event.objects.create(name="upload", data={"photo": self.pk, "size": size})
        return {"uploaded": self.pk, "size": size}

    @classmethod
    def cleanup(cls, older_than_days):
        Event.objects.create(name="cleanup", data={"days": older_than_days})


class CatCircle(models.Model):
    name = models.CharField(max_length=100)
    hats_flipped = models.IntegerField(default=0)

    @handle_asynchronously
    def flip_hats(self, times=1):
        """Flip every cat's hat."""
        CatCircle.objects.filter(pk=self.pk).update(hats_flipped=models.F("hats_flipped") + times)
        Event.objects.create(name="flip_hats", data={"circle": self.pk, "times": times})

    @handle_asynchronously(run_at=lambda: timezone.now() + timedelta(days=1))
    def daily_reminder(self):
        Event.objects.create(name="daily_reminder", data={"circle": self.pk})

    @handle_asynchronously(priority=100, queue="urgent")
    def of_utmost_urgency(self):
        Event.objects.create(name="urgent", data={"circle": self.pk})

    @handle_asynchronously(queue=lambda circle: f"circle-{circle.pk}")
    def per_circle(self):
        Event.objects.create(name="per_circle", data={"circle": self.pk})
