from .eventrequest import EventRequest as EventRequest
from .eventstream import send_event as send_event
