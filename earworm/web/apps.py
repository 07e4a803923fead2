from django.apps import AppConfig


class WebConfig(AppConfig):
    name = "earworm.web"
    label = "web"
