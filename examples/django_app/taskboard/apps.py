from django.apps import AppConfig


class TaskboardConfig(AppConfig):
    name = "taskboard"
    default_auto_field = "django.db.models.BigAutoField"
