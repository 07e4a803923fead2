from django.apps import AppConfig


class ApiConfig(AppConfig):
    name = "earworm.api"
    label = "api"
