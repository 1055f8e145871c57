"""The one rule for label values, whatever the source (the SMS format, CSV/TSV/JSON lines/Parquet
files, Hub datasets, IMDb):

* a label is named by its text with the surrounding whitespace stripped (`'spam '` is `spam`);
* an integer label is named by its decimal digits, so `0` in one file and `"0"` in another are
  the same class (`1.5` or `True` keep their own spelling);
* two names that differ only by case (`spam`, `Spam`) are refused, not made two classes: a typo
  would otherwise become a class of its own. `cleaning.py` names both spellings and a row of each.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

__all__ = ["case_clash", "case_hint", "label_name"]


def label_name(value: Any) -> str:
    """The class name of one raw label value (see the module's rule)."""
    return value.strip() if isinstance(value, str) else str(value)


def case_clash(names: Iterable[str]) -> tuple[str, str] | None:
    """The first two of `names` (in order) that differ only by case, else None."""
    seen: dict[str, str] = {}
    for name in names:
        other = seen.setdefault(name.casefold(), name)
        if other != name:
            return other, name
    return None


def case_hint(name: str, known: Iterable[str]) -> str:
    """For an unknown label: ` ('Spam' differs only by case from 'spam')` if it does, else ''."""
    alike = [other for other in known if other.casefold() == name.casefold()]
    return f" ({name!r} differs only by case from {alike[0]!r})" if alike else ""
