"""A Hub dataset as splits: `datasets.load_dataset`, its train/validation/test kept as they are.

`datasets` fetches and caches it; when the Hub cannot be reached and the dataset is not cached,
`FetchError` says so in one line instead of the connection error.
"""

from __future__ import annotations

from collections.abc import Callable

import datasets
from transformers.utils import logging

from ..errors import OFFLINE, DataError, is_network_failure
from .arguments import DataArguments
from .downloads import FetchError
from .formats import Split, cached_map, select_columns

logger = logging.get_logger(__name__)

#: A Hub split's name -> ours (other splits, e.g. IMDb's `unsupervised`, are ignored).
HUB_SPLIT_NAMES = {
    "train": "train",
    "validation": "validation",
    "valid": "validation",
    "dev": "validation",
    "test": "test",
}


def load_hub_dataset(
    args: DataArguments,
    text_column: str | None = None,
    label_column: str | None = None,
    label_names: tuple[str, ...] | None = None,
    transform: Callable[[dict[str, list]], dict[str, list]] | None = None,
) -> dict[str, Split]:
    """The train/validation/test splits of the Hub dataset `args.dataset`.

    The columns default to --text_column/--label_column; `label_names` are the class names the
    dataset is known to fix, and `transform` a batched `map` applied to every split (a known
    dataset's own quirks).
    """
    text_column = text_column or args.text_column
    label_column = label_column or args.label_column
    try:
        loaded = datasets.load_dataset(
            args.dataset, args.dataset_config_name, cache_dir=args.data_cache_dir
        )
    except Exception as err:
        if not is_network_failure(err):
            raise
        raise FetchError(
            f"could not fetch the Hub dataset {args.dataset!r}: {OFFLINE}, and it is not in the "
            "datasets cache; pass a local path (--dataset FILE, or --train_file FILE)"
        ) from err
    splits = {}
    for name, dataset in loaded.items():
        if name not in HUB_SPLIT_NAMES:
            logger.info(f"Ignoring split {name!r} of {args.dataset}")
            continue
        origin = f"{args.dataset} (split {name!r})"
        dataset = select_columns(dataset, origin, text_column, label_column)
        if transform is not None:
            dataset = cached_map(dataset, transform, batched=True)
        splits[HUB_SPLIT_NAMES[name]] = Split(
            dataset, origin, "row", text_column, label_column, label_names
        )
    if "train" not in splits:
        raise DataError(f"{args.dataset}: no 'train' split, found {', '.join(loaded)}")
    return splits


def load_hub_source(args: DataArguments) -> tuple[dict[str, Split], list[str]]:
    """Any Hub dataset: its own splits, with --text_column/--label_column."""
    return load_hub_dataset(args), [f"Hub dataset {args.dataset}"]


__all__ = ["HUB_SPLIT_NAMES", "load_hub_dataset", "load_hub_source"]
