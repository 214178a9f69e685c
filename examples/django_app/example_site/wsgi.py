"""WSGI entry point: ``gunicorn example_site.wsgi`` (add ``--preload`` if you like).

The process client connects here, at start-up, so that a missing NATS server or a stream
that cannot be created stops the deployment instead of failing the first requests. Under
``gunicorn --preload`` this runs once in the master; each worker process then makes its
own client on first use after the fork (syncmsg.django.get_client() checks the pid), and
does not ensure the streams again.
"""

import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "example_site.settings")

application = get_wsgi_application()

if os.environ.get("TASKBOARD_CONNECT_AT_STARTUP", "1") == "1":
    from syncmsg.django import get_client

    get_client()
