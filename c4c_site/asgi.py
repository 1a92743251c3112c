"""ASGI entry point served by daphne: channels' protocol router in front of Django.

Importing it is "the server starts": request tracing is installed before Django builds its
middleware chain, and runs that a previous process of this server left running are failed.
"""

import os

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "c4c_site.settings")

from executions.startup import instrument, recover_interrupted

instrument()

from django.core.asgi import get_asgi_application  # noqa: E402

django_asgi_app = get_asgi_application()
recover_interrupted()

from channels.routing import ProtocolTypeRouter  # noqa: E402

application = ProtocolTypeRouter({"http": django_asgi_app})
