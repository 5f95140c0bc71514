"""Pure domain: order and saga state machines, money, retry policy, errors and ports.

Imports only the standard library (enforced by import-linter in `make test`).
"""
