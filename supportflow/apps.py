from django.apps import AppConfig


class SupportflowConfig(AppConfig):
    name = "supportflow"
    verbose_name = "SupportFlow"

    def ready(self) -> None:
        from supportflow import metrics

        metrics.install()
