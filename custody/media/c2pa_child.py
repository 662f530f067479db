"""The C2PA worker process's entry point (``python -m custody.media.c2pa_child``, started by
``custody.media.c2pa_worker.LibraryWorker``): the library read in process, by
``CredentialReader(isolate=False)``, under the worker's limits."""

from __future__ import annotations

import os
import sys

from custody.media.c2pa_worker import OVER_LIMIT, serve
from custody.media.credentials import CredentialReader

if __name__ == "__main__":
    try:
        channel, anchors, parent, limit = (int(a) for a in sys.argv[1:5])
        serve(channel, anchors, parent, limit, lambda trust: CredentialReader(trust, isolate=False).read_handle)
    except MemoryError:
        os._exit(OVER_LIMIT)
