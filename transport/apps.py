from django.apps import AppConfig


class TransportConfig(AppConfig):
    name = "transport"
    verbose_name = "Transport"

    def ready(self) -> None:
        # Every guarded speed-up refuses to load against releases it was not written for.
        from transport.versions import check_all

        check_all()
