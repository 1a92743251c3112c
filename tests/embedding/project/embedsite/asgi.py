"""The adopter's ASGI entry point, unchanged from `startproject`: daphne serves it."""

import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "embedsite.settings")

application = get_asgi_application()
