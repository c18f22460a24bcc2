"""Staff identity shared by every service: the store's schema (`store`) and the one verification
of a request's session or API token (`verifier`). The identity service (`services/identity/`)
is the only writer of accounts, sessions and tokens."""
