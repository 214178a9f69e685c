"""Settings for the outbox's process tests: the example project, a relay quick to notice
things (short lease, timeouts and backoff), and crash points (``outbox_site_urls``).

Used as DJANGO_SETTINGS_MODULE by the subprocesses of test_django_outbox_processes.py.
"""

import os

from example_site.settings import *  # noqa: F403
from example_site.settings import SYNCMSG

ROOT_URLCONF = "outbox_site_urls"

SYNCMSG = {
    **SYNCMSG,
    "outbox": {
        "lease": 3.0,  # a killed single-mode relay is replaced after 3 s
        "publish_timeout": 1.0,
        "poll_interval": 0.05,
        "backoff_initial": 0.1,
        "backoff_max": 1.0,
        "health_max_age": 60.0,
        "batch_size": int(os.environ.get("OUTBOX_BATCH_SIZE", "1000")),
    },
}
