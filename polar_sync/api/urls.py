"""The API's routes, included by ``polar_sync.urls`` under ``api/``.

Names (namespace ``polar_sync:api``): ``root``, ``customer-list``, ``customer-detail``,
``customer-members``, ``me``, ``schema``, ``docs`` (Swagger UI) and ``redoc`` (ReDoc).
Only ``endpoint_patterns`` are in the schema.
"""

from django.urls import path

from .members import CustomerMemberList
from .pages import ApiRootView, RedocView, SwaggerView
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
    path("", ApiRootView.as_view(), name="root"),
    *endpoint_patterns,
    path("schema/", PolarSchemaView.as_view(endpoints=endpoint_patterns), name="schema"),
    path("docs/", SwaggerView.as_view(), name="docs"),
    path("redoc/", RedocView.as_view(), name="redoc"),
]
