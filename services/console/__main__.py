"""`python -m services.console`: the staff console's pages, and its one door to the APIs."""

from services.console.app import create_app
from services.console.settings import ConsoleSettings
from shared.serve import serve


def main() -> None:
    # No secret to require: the console holds none (sessions are verified by each service).
    serve(create_app, ConsoleSettings(), service="console")


if __name__ == "__main__":
    main()
