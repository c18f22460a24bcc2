"""`python -m services.ingest`: the webhook receiver."""

from services.ingest.app import create_app
from services.ingest.settings import IngestSettings
from shared.serve import serve
from shared.startup import require_secrets


def main() -> None:
    settings = IngestSettings()
    require_secrets(settings)
    serve(create_app, settings, service="ingest")


if __name__ == "__main__":
    main()
