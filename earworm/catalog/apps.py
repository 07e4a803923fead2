from django.apps import AppConfig


class CatalogConfig(AppConfig):
    name = "earworm.catalog"
    label = "catalog"
