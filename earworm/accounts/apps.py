from django.apps import AppConfig


class AccountsConfig(AppConfig):
    name = "earworm.accounts"
    label = "accounts"
