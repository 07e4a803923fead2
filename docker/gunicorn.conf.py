"""gunicorn settings for docker/web. Every value can be changed through the environment named beside it."""

import os
from pathlib import Path

from earworm.core.logging import logging_config

# PORT: where the container listens (the compose file publishes it to the host's loopback only).
bind = os.environ.get("GUNICORN_BIND", f"0.0.0.0:{os.environ.get('PORT', '8000')}")
# WEB_CONCURRENCY: processes. Threads serve slow clients and uploads without blocking a whole process;
# each thread keeps one database connection open (CONN_MAX_AGE), so size PostgreSQL's max_connections
# for processes x threads x web containers, plus the workers.
workers = int(os.environ.get("WEB_CONCURRENCY", "2"))
worker_class = "gthread"
threads = int(os.environ.get("GUNICORN_THREADS", "4"))
# A request may take this long (an upload of the largest export over a slow line takes a while; syncs and
# imports run in workers, never in a request).
timeout = int(os.environ.get("GUNICORN_TIMEOUT", "120"))
# SIGTERM: stop accepting, finish requests in flight for up to this long, then exit.
graceful_timeout = int(os.environ.get("GUNICORN_GRACEFUL_TIMEOUT", "30"))
keepalive = 5
# Recycle processes now and then so a slow leak cannot grow forever; the jitter keeps them from restarting
# together.
max_requests = 2000
max_requests_jitter = 200
# The heartbeat file on tmpfs: a container's overlay filesystem can stall it and get workers killed.
worker_tmp_dir = "/dev/shm" if Path("/dev/shm").is_dir() else None  # noqa: S108
# No gunicorn access log: earworm.core.middleware.RequestIdMiddleware logs each request as JSON with its
# request id and without the query string, where the OAuth callback carries `code` and `state`.
accesslog = None
errorlog = "-"
logconfig_dict = logging_config(json_logs=True, level=os.environ.get("DJANGO_LOG_LEVEL", "INFO"))
# The reverse proxy owns X-Forwarded-*; Django trusts only X-Forwarded-Proto (SECURE_PROXY_SSL_HEADER).
# gunicorn 25.1+ opens a control socket in $HOME by default; not wanted in a container, and two servers on
# one machine would fight over the path.
control_socket_disable = True
forwarded_allow_ips = os.environ.get("FORWARDED_ALLOW_IPS", "127.0.0.1,::1")
