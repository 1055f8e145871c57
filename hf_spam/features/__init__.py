"""The frozen trunk's output for every example, computed once and kept on disk.

When only the top of the network trains, the blocks below `start_block` compute the same states
for an example in every epoch, evaluation and run with the same frozen weights.
`open_trunk_store` computes them once and returns a `TrunkFeatureStore`, read batch by batch
through `block_inputs(...)` (the interface `SpamTrainer` feeds the model from). The features stay
float32 (exact).

* `store`: the on-disk format, reading, and the fingerprint the store is keyed by.
* `build`: building it once, across ranks (`open_trunk_store`), and `measure_store`.
"""

from .build import measure_store, open_trunk_store
from .store import (
    ScannedData,
    TrunkFeatureStore,
    default_store_root,
    scan_dataset,
    trunk_fingerprint,
)

__all__ = [
    "ScannedData",
    "TrunkFeatureStore",
    "default_store_root",
    "measure_store",
    "open_trunk_store",
    "scan_dataset",
    "trunk_fingerprint",
]
