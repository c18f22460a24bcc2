"""`python -m services.reports`: citizens' messages triaged into cases for dispatchers."""

from services.reports.app import create_app
from services.reports.settings import ReportsSettings
from shared.serve import serve
from shared.startup import forbid_static_tokens, require_secrets


def main() -> None:
    settings = ReportsSettings()
    require_secrets(settings, "zalo_app_secret_key", "pseudonym_key", "tipster_vault_key")
    forbid_static_tokens(settings)
    serve(create_app, settings, service="reports")


if __name__ == "__main__":
    main()
