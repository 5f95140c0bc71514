# syntax=docker/dockerfile:1
# Multi-stage: dependencies are built with a compiler in `build`; `runtime` carries only the
# virtualenv, the code and the PostgreSQL client (pg_dump/pg_restore for `flask backup/restore`),
# and runs as an unprivileged user.

FROM python:3.11-slim-bookworm AS build
RUN apt-get update \
 && apt-get install -y --no-install-recommends build-essential \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /build
COPY requirements.txt .
RUN python -m venv /venv \
 && /venv/bin/pip install --no-cache-dir --upgrade pip \
 && /venv/bin/pip install --no-cache-dir -r requirements.txt

FROM python:3.11-slim-bookworm AS runtime
RUN apt-get update \
 && apt-get install -y --no-install-recommends postgresql-client-15 \
 && rm -rf /var/lib/apt/lists/* \
 && groupadd --system --gid 10001 app \
 && useradd --system --uid 10001 --gid app --home-dir /app --shell /usr/sbin/nologin app
COPY --from=build /venv /venv
WORKDIR /app
COPY --chown=app:app app ./app
COPY --chown=app:app worker ./worker
COPY --chown=app:app migrations ./migrations
COPY --chown=app:app templates ./templates
COPY --chown=app:app static ./static
COPY --chown=app:app scripts ./scripts
COPY --chown=app:app config.py wsgi.py gunicorn.conf.py Procfile ./
RUN mkdir -p /app/instance /backups && chown app:app /app/instance /backups
ENV PATH=/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    FLASK_APP=wsgi \
    ORDERPROCESSING_ENV=production \
    ORDERPROCESSING_INSTANCE_PATH=/app/instance \
    ORDERPROCESSING_BACKUP_DIR=/backups \
    ORDERPROCESSING_PG_BIN_DIR=/usr/lib/postgresql/15/bin \
    PORT=8000
USER 10001:10001
EXPOSE 8000
# Liveness only (/healthz touches no dependency); HTTPS when a certificate is configured.
HEALTHCHECK --interval=15s --timeout=5s --start-period=20s --retries=3 \
  CMD ["python", "scripts/healthcheck.py", "/healthz"]
# The Procfile's `web`; the same image runs `python -m worker`, `python -m worker.scheduler`
# and the release step `flask --app wsgi db upgrade`.
CMD ["gunicorn", "-c", "gunicorn.conf.py", "wsgi:app"]
