"""Settings for the booking rush server: the project's, without persistent connections.

Under daphne each request runs in its own thread; with CONN_MAX_AGE > 0 every thread
keeps its own PostgreSQL connection open and a rush of requests exhausts the server's
max_connections ("too many clients"). Closing connections after each request avoids it.
"""

from purplevisits.settings import *  # noqa: F403
from purplevisits.settings import DATABASES

DATABASES["default"]["CONN_MAX_AGE"] = 0
