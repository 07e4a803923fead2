# syntax=docker/dockerfile:1
# Earworm's image: web, worker and scheduler all run from it, started by the scripts in docker/.
# Build: docker build -t earworm .   Run: see compose.yaml and docs/deploy.md.

ARG PYTHON_IMAGE=python:3.11-slim-bookworm

# --- build: the dependencies into a virtualenv --------------------------------------------------------------
FROM ${PYTHON_IMAGE} AS build
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONDONTWRITEBYTECODE=1
RUN python -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH
WORKDIR /src
COPY pyproject.toml ./
COPY config ./config
COPY earworm ./earworm
COPY spotify_emulator ./spotify_emulator
# Every dependency is a wheel (psycopg[binary]), so no compiler is needed. The project itself runs from /app,
# not from site-packages, so only its dependencies stay in the virtualenv.
RUN pip install . && pip uninstall --yes earworm

# --- runtime: no build tools, no pip cache, a non-root user ------------------------------------------------
FROM ${PYTHON_IMAGE} AS runtime
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    DJANGO_SETTINGS_MODULE=config.settings.production \
    PORT=8000
RUN groupadd --system --gid 10001 earworm \
    && useradd --system --uid 10001 --gid earworm --home-dir /app --no-create-home --shell /usr/sbin/nologin earworm
COPY --from=build /opt/venv /opt/venv
WORKDIR /app
COPY manage.py pyproject.toml ./
COPY config ./config
COPY earworm ./earworm
COPY spotify_emulator ./spotify_emulator
COPY docker ./docker
# Static files are collected into the image; whitenoise serves them compressed. The placeholders only let the
# production settings load: collectstatic reads no secret, and none of them stays in the image.
RUN DJANGO_SECRET_KEY=collectstatic-placeholder DJANGO_ALLOWED_HOSTS=localhost \
        TOKEN_ENCRYPTION_KEYS=collectstatic-placeholder SPOTIFY_CLIENT_ID=collectstatic-placeholder \
        python manage.py collectstatic --noinput --verbosity 0 \
    && mkdir -p /app/data && chown earworm:earworm /app/data
USER earworm:earworm
EXPOSE 8000
# /healthz checks the database and the queue; docker/healthcheck sends a Host that DJANGO_ALLOWED_HOSTS accepts.
HEALTHCHECK --interval=30s --timeout=10s --start-period=30s --retries=3 CMD ["python", "docker/healthcheck"]
# gunicorn and the Huey consumers (--graceful-signal TERM) shut down gracefully on SIGTERM.
STOPSIGNAL SIGTERM
CMD ["docker/web"]
