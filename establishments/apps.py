from django.apps import AppConfig


class EstablishmentsConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "establishments"
    verbose_name = "Establishments"

    def ready(self) -> None:
        from establishments import schedule  # noqa: F401  (its signal receivers)
