"""Huey tasks of the core app."""

import time

from huey.contrib.djhuey import task

PING_MAX_SECONDS = 60.0


@task()
def queue_ping(value: str, seconds: float = 0.0) -> str:
    """Return `value`, after `seconds` (at most a minute): proof that a worker consumes the queue.

    Operators use it to check a deployment (docs/operations.md); the deploy tests use the delay to send
    SIGTERM while a task runs and see the worker finish it before it exits.
    """
    time.sleep(min(max(seconds, 0.0), PING_MAX_SECONDS))
    return value
