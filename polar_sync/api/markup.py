"""Descriptions that render: view docstrings are Markdown, shown as HTML in the browsable API.

DRF renders a docstring as Markdown only when the ``markdown`` package is installed, and
otherwise shows it as plain text, backticks and all. ``MarkdownDescriptionMixin`` keeps
DRF's rendering when it can, and otherwise renders the little Markdown the docstrings use
(paragraphs and inline code) itself. The OpenAPI schema takes the same docstrings: Swagger
UI and ReDoc render their Markdown.
"""

from __future__ import annotations

import re

from django.utils.html import escape
from django.utils.safestring import SafeString, mark_safe
from rest_framework import compat
from rest_framework.utils import formatting

_CODE = re.compile(r"`([^`\n]+)`")


def markdown_to_html(text: str) -> SafeString:
    """Paragraphs and inline code of ``text`` as HTML, escaped (no ``markdown`` needed)."""
    paragraphs = [p.strip() for p in re.split(r"\n\s*\n", text.strip()) if p.strip()]
    html = "".join(
        "<p>" + _CODE.sub(r"<code>\1</code>", escape(p).replace("\n", " ")) + "</p>"
        for p in paragraphs
    )
    return mark_safe(html)  # noqa: S308 - every piece of text was escaped above


class MarkdownDescriptionMixin:
    """For APIViews: the docstring, rendered as Markdown in the browsable API."""

    def get_view_description(self, html: bool = False) -> str:
        description = super().get_view_description(html=False)  # type: ignore[misc]
        if not html:
            return description
        if compat.apply_markdown is not None:
            return formatting.markup_description(description)
        return markdown_to_html(description)
