"""The API's routes, included by ``polar_sync.urls`` under ``api/``."""

from django.urls import path

from .members import CustomerMemberList
from .schema import PolarSchemaView
from .views import CustomerViewSet, MeView

app_name = "api"

endpoint_patterns = [
    path("customers/", CustomerViewSet.as_view({"get": "list"}), name="customer-list"),
    path(
        "customers/<uuid:pk>/",
        CustomerViewSet.as_view({"get": "retrieve"}),
        name="customer-detail",
    ),
    path(
        "customers/<uuid:pk>/members/",
        CustomerMemberList.as_view(),
        name="customer-members",
    ),
    path("me/", MeView.as_view(), name="me"),
]

urlpatterns = [
    *endpoint_patterns,
    path("schema/", PolarSchemaView.as_view(endpoints=endpoint_patterns), name="schema"),
]
