"""Staff identity: accounts, sign-in with a second factor, sessions, API tokens, audit."""
