"""`python -m services.broadcast`: the HTTP API (port 8030) plus sender workers."""

from services.broadcast.app import create_app
from services.broadcast.settings import BroadcastSettings
from shared.serve import serve
from shared.startup import forbid_static_tokens, require_secrets


def main() -> None:
    settings = BroadcastSettings()
    require_secrets(settings, "zalo_app_secret_key", "pseudonym_key")
    forbid_static_tokens(settings)
    serve(create_app, settings, service="broadcast")


if __name__ == "__main__":
    main()
