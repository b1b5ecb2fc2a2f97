from django.apps import AppConfig


class PublicConfig(AppConfig):
    name = "tidings.public"
    label = "public"
    verbose_name = "Public site"
