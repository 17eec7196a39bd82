"""Code blocks of a docs page, by title: what ``scripts/check-install`` runs.

A block is taken when its fence carries a title (MkDocs Material's
```` ```python title="mysite/settings.py (at the end)" ````)::

    python3 scripts/docs_snippets.py docs/install.md "mysite/celery.py"   # prints the block
    python3 scripts/docs_snippets.py docs/install.md --list               # the titles

Only the standard library: it runs before any virtualenv exists.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

FENCE = re.compile(r'^```(?P<lang>[\w-]*)\s+title="(?P<title>[^"]+)"\s*$')


def snippets(text: str) -> dict[str, str]:
    """Each titled block's code, by title (a title used twice is an error)."""
    found: dict[str, str] = {}
    lines = text.splitlines()
    i = 0
    while i < len(lines):
        match = FENCE.match(lines[i])
        i += 1
        if not match:
            continue
        body: list[str] = []
        while i < len(lines) and lines[i].strip() != "```":
            body.append(lines[i])
            i += 1
        if i == len(lines):
            raise ValueError(f"block {match['title']!r} is not closed")
        i += 1
        title = match["title"]
        if title in found:
            raise ValueError(f"two blocks are titled {title!r}")
        found[title] = "\n".join(body) + "\n"
    return found


def main(argv: list[str]) -> int:
    page, wanted = argv[1], argv[2]
    blocks = snippets(Path(page).read_text(encoding="utf-8"))
    if wanted == "--list":
        print("\n".join(blocks))
        return 0
    if wanted not in blocks:
        known = ", ".join(blocks)
        print(f"{page} has no block titled {wanted!r} (it has: {known})", file=sys.stderr)
        return 1
    sys.stdout.write(blocks[wanted])
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
