from django.apps import AppConfig
from django.core import checks


class SfuConfig(AppConfig):
    name = "sfu"
    verbose_name = "SFU (Janus)"

    def ready(self) -> None:
        from sfu.checks import check_sfu_settings

        checks.register(check_sfu_settings)
