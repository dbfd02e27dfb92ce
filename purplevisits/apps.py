from django.apps import AppConfig


class PurpleVisitsConfig(AppConfig):
    name = "purplevisits"
    verbose_name = "Purple Visits"

    def ready(self) -> None:
        from purplevisits import signals  # noqa: F401 - connects the receivers
