"""Authentication and authorization: one permission table, JWTs, API keys, login views."""
