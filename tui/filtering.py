"""The `/` filter of every list, k9s-style: pure, so it is unit-tested without a terminal.

Called by `widgets.resource_table.ResourceTable`. A query is whitespace-separated terms, matched
case-insensitively against a row's cells joined; every term must match; a term starting with `!`
must not match (`!stopped` hides stopped rows).
"""

from __future__ import annotations

from collections.abc import Sequence


def terms(query: str) -> tuple[list[str], list[str]]:
    """(wanted, unwanted) terms of a query, lower-cased; a lone `!` is ignored."""
    wanted, unwanted = [], []
    for term in query.lower().split():
        if term.startswith("!"):
            if term[1:]:
                unwanted.append(term[1:])
        else:
            wanted.append(term)
    return wanted, unwanted


def matches(cells: Sequence[object], query: str) -> bool:
    wanted, unwanted = terms(query)
    text = " ".join(str(cell) for cell in cells).lower()
    return all(t in text for t in wanted) and not any(t in text for t in unwanted)
