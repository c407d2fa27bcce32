from django.apps import AppConfig


class AccountsConfig(AppConfig):
    name = "couponplatform.accounts"
    label = "accounts"
    verbose_name = "Partners and accounts"
