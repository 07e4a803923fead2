from django.apps import AppConfig


class StatsConfig(AppConfig):
    name = "earworm.stats"
    label = "stats"
