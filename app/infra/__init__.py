"""The only code touching SQLAlchemy models, Redis, RQ, Vault, HTTP and provider simulators."""
