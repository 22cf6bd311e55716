from django.apps import AppConfig


class SupportflowConfig(AppConfig):
    name = "supportflow"
    verbose_name = "SupportFlow"
