from django.apps import AppConfig


class HistoryConfig(AppConfig):
    name = "earworm.history"
    label = "history"

    def ready(self) -> None:
        from earworm.history import signals  # noqa: F401 (connects the receivers)
