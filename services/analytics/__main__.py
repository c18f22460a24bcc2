"""`python -m services.analytics`: counters from the event streams, metrics API, dashboard."""

from services.analytics.app import create_app
from services.analytics.settings import AnalyticsSettings
from shared.process import collect_less_often
from shared.serve import serve
from shared.startup import forbid_static_tokens, require_secrets


def main() -> None:
    settings = AnalyticsSettings()
    require_secrets(settings, "zalo_app_secret_key", "pseudonym_key")
    forbid_static_tokens(settings)
    collect_less_often()
    serve(create_app, settings, service="analytics")


if __name__ == "__main__":
    main()
