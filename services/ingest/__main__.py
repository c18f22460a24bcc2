"""`python -m services.ingest`: the webhook receiver."""

from services.ingest.app import create_app
from services.ingest.settings import IngestSettings
from shared.serve import serve


def main() -> None:
    settings = IngestSettings()
    serve(create_app, settings, service="ingest")


if __name__ == "__main__":
    main()
