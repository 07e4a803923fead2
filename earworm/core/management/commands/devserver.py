"""`make run`: the web server, a job consumer and, in demo mode, the Spotify emulator, stopped together."""

import signal
import subprocess
import sys
import time
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand


class Command(BaseCommand):
    help = "Run Earworm locally: web server on 127.0.0.1:8000, a Huey consumer, and the emulator in demo mode."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("--port", type=int, default=8000)

    def handle(self, *args: Any, port: int, **options: Any) -> None:
        commands: list[tuple[str, list[str]]] = []
        if settings.DEMO_MODE:
            # Every demo listener has plays to show at the first sync, whatever the hour (--recent-plays).
            emulator = f"-m spotify_emulator --port {settings.DEMO_EMULATOR_PORT} --recent-plays 50"
            commands.append(("emulator", [sys.executable, *emulator.split()]))
        commands.append(("worker", [sys.executable, "manage.py", "run_huey", "--workers", "2"]))
        # No autoreload: `make run` is for using Earworm, and a reloader would restart it on every file save.
        commands.append(("web", [sys.executable, "manage.py", "runserver", "--noreload", f"127.0.0.1:{port}"]))

        # SIGTERM (e.g. from `timeout` or a service manager) stops everything like Ctrl-C does, instead of
        # killing this process alone and orphaning the children.
        signal.signal(signal.SIGTERM, _raise_keyboard_interrupt)
        processes: list[tuple[str, subprocess.Popen[bytes]]] = []
        try:
            for name, command in commands:
                processes.append((name, subprocess.Popen(command)))
                if name == "emulator":
                    time.sleep(1)  # let it bind before the web server points at it
            if settings.DEMO_MODE:
                self.stdout.write(
                    self.style.WARNING("Demo mode: no SPOTIFY_CLIENT_ID, using the built-in Spotify emulator.")
                )
            self.stdout.write(self.style.SUCCESS(f"Earworm is at http://127.0.0.1:{port}/  (Ctrl-C stops everything)"))
            while all(process.poll() is None for _, process in processes):
                time.sleep(0.5)
            for name, process in processes:
                if process.poll() is not None:
                    self.stderr.write(f"{name} stopped (exit code {process.returncode}); stopping the rest.")
        except KeyboardInterrupt:
            pass
        finally:
            for _, process in processes:
                if process.poll() is None:
                    process.send_signal(signal.SIGINT)
            deadline = time.monotonic() + 10
            for _, process in processes:
                try:
                    process.wait(timeout=max(0.1, deadline - time.monotonic()))
                except subprocess.TimeoutExpired:
                    process.kill()


def _raise_keyboard_interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt
