"""``tf.data`` input pipelines that stream shuffled batches from a patch store.

The store is never loaded whole.  Each data epoch reads the store's chunks
(:data:`~tf_twogan.store.CHUNK_PATCHES` patches each, one gzip chunk) in a seeded
random order, ``window`` chunks at a time, and shuffles the patches inside each
window.  The order depends only on (seed, data epoch), so a run restarted at batch
``b`` sees exactly the batches an uninterrupted run would (resume = uninterrupted).
"""
from __future__ import annotations

import os
from typing import Iterator, Sequence

import numpy as np

from .store import CHUNK_PATCHES, PatchStore, StoreError


class PatchStream:
    """An endless, deterministic stream of shuffled batches of aligned patches.

    Args:
        store_path: the ``.h5`` patch store.
        kinds: patch datasets to yield together (``("ir", "vis")``).
        batch_size: patches per batch; the last partial batch of a data epoch is dropped.
        seed: shuffling seed.
        window: chunks mixed together (memory: ``window * 64`` patches per kind).
        patch_size: expected patch size (validated against the store).

    Example:
        >>> stream = PatchStream("tno_train.h5", ("ir", "vis"), batch_size=32)
        >>> dataset = stream.dataset()          # tf.data, uint8 (32, 128, 128, 1) per kind
    """

    def __init__(self, store_path: str | os.PathLike, kinds: Sequence[str], batch_size: int, seed: int = 0,
                 window: int = 8, patch_size: int | None = None) -> None:
        self.store_path, self.kinds, self.batch_size = store_path, tuple(kinds), int(batch_size)
        self.seed, self.window = int(seed), int(window)
        with PatchStore(store_path, self.kinds, patch_size) as store:
            self.size, self.patch_size = len(store), store.patch_size
        if self.size < self.batch_size:
            raise StoreError(f"{store_path}: holds {self.size} patches, fewer than one batch of {self.batch_size}")

    @property
    def batches_per_epoch(self) -> int:
        """Whole batches in one pass over the store."""
        return self.size // self.batch_size

    def epoch_windows(self, epoch: int) -> list[np.ndarray]:
        """The patch indices of each window of one data epoch, in visiting order."""
        rng = np.random.default_rng([self.seed, epoch])
        chunks = rng.permutation(-(-self.size // CHUNK_PATCHES))
        windows = []
        for first in range(0, len(chunks), self.window):
            indices = np.concatenate([np.arange(c * CHUNK_PATCHES, min((c + 1) * CHUNK_PATCHES, self.size))
                                      for c in np.sort(chunks[first:first + self.window])])
            windows.append(indices[rng.permutation(len(indices))])
        return windows

    def epoch_order(self, epoch: int) -> np.ndarray:
        """The full patch order of one data epoch (a permutation of the store)."""
        return np.concatenate(self.epoch_windows(epoch))

    def batches(self, start: int = 0) -> Iterator[dict[str, np.ndarray]]:
        """Yield batches ``start, start + 1, ...`` forever, as {kind: uint8 array}."""
        with PatchStore(self.store_path, self.kinds) as store:
            epoch, skip = divmod(start, self.batches_per_epoch)
            skip *= self.batch_size
            while True:
                carry = {kind: np.zeros((0, self.patch_size, self.patch_size, 1), np.uint8) for kind in self.kinds}
                for window in self.epoch_windows(epoch):
                    if skip >= len(window):
                        skip -= len(window)
                        continue
                    loaded = self._load_window(store, window[skip:])
                    skip = 0
                    carry = {kind: np.concatenate([carry[kind], loaded[kind]]) for kind in self.kinds}
                    while len(carry[self.kinds[0]]) >= self.batch_size:
                        yield {kind: patches[:self.batch_size] for kind, patches in carry.items()}
                        carry = {kind: patches[self.batch_size:] for kind, patches in carry.items()}
                epoch += 1  # the partial batch left over is dropped

    def _load_window(self, store: PatchStore, indices: np.ndarray) -> dict[str, np.ndarray]:
        """Read patches ``indices`` (in that order) with one contiguous read per run of indices."""
        ordered = np.sort(indices)
        runs = np.split(ordered, np.flatnonzero(np.diff(ordered) != 1) + 1)
        rows = np.searchsorted(ordered, indices)
        return {kind: np.concatenate([store.read(kind, run[0], run[-1] + 1) for run in runs])[rows] for kind in self.kinds}

    def dataset(self, start: int = 0):
        """A ``tf.data.Dataset`` of the stream from batch ``start``, prefetched."""
        import tensorflow as tf

        spec = tf.TensorSpec((self.batch_size, self.patch_size, self.patch_size, 1), tf.uint8)
        dataset = tf.data.Dataset.from_generator(lambda: self.batches(start), output_signature={kind: spec for kind in self.kinds})
        return dataset.prefetch(tf.data.AUTOTUNE)
