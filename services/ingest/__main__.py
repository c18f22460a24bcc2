"""`python -m services.ingest`: the webhook receiver."""

from services.ingest.app import create_app
from services.ingest.settings import IngestSettings
from shared.process import collect_less_often
from shared.serve import serve
from shared.startup import require_secrets


def main() -> None:
    settings = IngestSettings()
    require_secrets(settings, "zalo_oa_secret_key", "pseudonym_key")
    # Each webhook allocates a span and its context besides the event: with CPython's default
    # thresholds the full collections walked every imported module's objects (the tracing
    # and metrics libraries among them) several times a second at full load.
    collect_less_often()
    serve(create_app, settings, service="ingest", http="httptools")


if __name__ == "__main__":
    main()
