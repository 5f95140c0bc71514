"""Metrics, request ids, structured logs, health and readiness, SLO evaluation."""
