"""The adopter's own app, to show c4c's URLs living beside it."""

from django.http import HttpRequest, HttpResponse
from django.urls import path


def order_list(request: HttpRequest) -> HttpResponse:
    return HttpResponse("orders: none yet", content_type="text/plain")


urlpatterns = [path("", order_list, name="order-list")]
