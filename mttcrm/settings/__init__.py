"""Settings for mttcrm, split by what they are about. Every value comes from the environment through the
one ``environ.Env`` of ``base.py``.

With nothing set, the embedded defaults run the whole app on one machine with no servers: SQLite, a
channel layer and a Celery broker kept in files under ``VAR_DIR``, the MTT rate limiter in a SQLite file,
and the local sandbox as MTT. Production sets ``DATABASE_URL`` (PostgreSQL) and ``REDIS_URL`` (README,
"Settings").
"""

from .api import *
from .base import *
from .desk import *
from .mtt import *
from .observability import *
from .reports import *
from .security import *
from .services import *
