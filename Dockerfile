# syntax=docker/dockerfile:1
# The web worker image: daphne serving config.asgi:application.
# Built by `docker compose build` (docker-compose.yml); see docs/deployment.md.

FROM python:3.11-slim-bookworm

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

# The app runs as this unprivileged user; the code stays owned by root, so a
# compromised worker cannot rewrite it.
RUN groupadd --system --gid 10001 app \
    && useradd --system --uid 10001 --gid app --no-create-home --home-dir /app \
        --shell /usr/sbin/nologin app

WORKDIR /app

# Dependencies first: this layer is rebuilt only when the pins change.
# Every runtime dependency ships wheels (psycopg[binary] included), so no
# compiler is needed.
COPY requirements.txt .
RUN pip install -r requirements.txt

COPY . .

# Static files are collected (hashed and compressed for WhiteNoise) at build
# time. The throwaway key only satisfies settings.py; nothing is signed here.
RUN DEBUG=false SECRET_KEY=collectstatic-at-build-time-only \
        python manage.py collectstatic --noinput --verbosity 0 \
    && python -m compileall -q config api accounts rooms signaling sfu transport infra deploy

USER app:app
EXPOSE 8000

HEALTHCHECK --interval=10s --timeout=5s --start-period=60s --retries=3 \
    CMD ["python", "deploy/healthcheck", "/readyz"]

# deploy/entrypoint waits for PostgreSQL, migrates under an advisory lock,
# creates the admin from DJANGO_SUPERUSER_*, then execs daphne --proxy-headers.
ENTRYPOINT ["/app/deploy/entrypoint"]
