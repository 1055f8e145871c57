"""The two steps every split shares: pandas' sampling draws, and cutting an order into splits.

pandas' `sample` draws with `RandomState(seed).choice(n, size, replace=False)`, which is
`RandomState(seed).permutation(n)[:size]`; the same draws are made here on Arrow-backed data.
The cut is the book's `random_split`: `int(n * fraction)` rows per split, the last the rest.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from datasets import Dataset

from ..errors import DataError
from .arguments import DataArguments


def pandas_sample(n: int, size: int, seed: int) -> np.ndarray:
    """The positions `DataFrame.sample(size, random_state=seed)` picks, in its order."""
    return np.random.RandomState(seed).permutation(n)[:size]


def cut(
    pool: Dataset, order: np.ndarray, args: DataArguments, names: Sequence[str], origin: str
) -> dict[str, Dataset]:
    """Consecutive slices of `order`: `int(n * fraction)` rows each, the last split the rest."""
    total = sum(args.fractions[name] for name in names)
    sizes = [int(len(order) * args.fractions[name] / total) for name in names[:-1]]
    sizes.append(len(order) - sum(sizes))
    if min(sizes) == 0:
        raise DataError(
            f"{origin}: {len(order)} rows left after cleaning"
            f"{' and balancing' if args.balance else ''} are too few for split fractions "
            f"{args.split_fractions}: {names[sizes.index(0)]!r} would be empty"
        )
    bounds = np.cumsum([0, *sizes])
    return {
        name: pool.select(order[a:b])
        for name, a, b in zip(names, bounds[:-1], bounds[1:], strict=True)
    }


__all__ = ["cut", "pandas_sample"]
