from django.apps import AppConfig


class CoreConfig(AppConfig):
    name = "earworm.core"
    label = "core"
