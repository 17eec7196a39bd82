"""A read-only REST API over the mirror (Django REST framework), with an OpenAPI schema.

Mounted by including ``polar_sync.urls`` (under ``api/``): the root ``api/`` lists the
endpoints ``customers/``, ``customers/<id>/``, ``customers/<id>/members/`` and ``me/``;
``schema/`` is their OpenAPI schema, ``docs/`` (Swagger UI) and ``redoc/`` (ReDoc) show
it from local static files (``pages.py``).
"""
