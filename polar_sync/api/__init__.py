"""A read-only REST API over the mirror (Django REST framework), with an OpenAPI schema.

Mounted by including ``polar_sync.urls`` (under ``api/``): ``customers/``,
``customers/<id>/``, ``me/`` and ``schema/``.
"""
