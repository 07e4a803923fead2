from django.apps import AppConfig


class HistoryConfig(AppConfig):
    name = "earworm.history"
    label = "history"
