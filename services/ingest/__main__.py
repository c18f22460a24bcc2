"""`python -m services.ingest`: the webhook receiver."""

from services.ingest.app import create_app
from services.ingest.settings import IngestSettings
from shared.serve import serve
from shared.startup import require_secrets


def main() -> None:
    settings = IngestSettings()
    require_secrets(settings, "zalo_oa_secret_key", "pseudonym_key")
    serve(create_app, settings, service="ingest", http="httptools")


if __name__ == "__main__":
    main()
