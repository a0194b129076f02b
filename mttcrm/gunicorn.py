"""gunicorn's configuration (``gunicorn --config python:mttcrm.gunicorn mttcrm.wsgi``): the server of the
pages and the notify URL, in `make run` and in docker compose alike.

Threaded workers (gthread): a request waiting on the database or on MTT (a click-to-call) holds one thread,
not the process. WEB_CONCURRENCY processes × WEB_THREADS threads each (README, "How many processes").
"""

from __future__ import annotations

import os

bind = os.environ.get("WEB_BIND", "0.0.0.0:8000")
workers = int(os.environ.get("WEB_CONCURRENCY", "2"))
worker_class = "gthread"
threads = int(os.environ.get("WEB_THREADS", "4"))
# Our access log (mttcrm.middleware.AccessLogMiddleware: the notify token masked, the client behind the
# proxy); gunicorn's own stays off.
accesslog = None
# A request (a click-to-call waiting for MTT) may take this long before its worker is restarted.
timeout = 60
graceful_timeout = 10
# Behind the proxy, which speaks HTTP/1.1 keep-alive to us.
keepalive = 5
# Its own start-up lines say nothing a developer needs; a worker that dies is a warning and still shown.
loglevel = "warning"
# No control socket (gunicorn 25+): several servers on one machine (make run, the tests, the benchmarks)
# would share its one default path.
control_socket_disable = True
