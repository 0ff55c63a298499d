"""``tf.data`` input pipelines that stream shuffled batches from a patch store.

The store is never loaded whole.  Each data epoch reads the store's chunks
(:data:`~tf_twogan.store.CHUNK_PATCHES` patches each, one gzip chunk) in a seeded
random order, ``window`` chunks at a time, and shuffles the patches inside each
window.  The order depends only on (seed, data epoch), so a run restarted at batch
``b`` sees exactly the batches an uninterrupted run would (resume = uninterrupted).

A batch is one array (N, P, P, K): the K kinds' aligned patches stacked on the last
axis in the stream's ``kinds`` order (:meth:`tf_twogan.gan.AdversarialPair.unpack_batch`
takes them apart).  One tensor rather than a dict because Keras, under a
``tf.distribute`` strategy, all-reduces one input batch before ``fit`` to build the
model, and MultiWorkerMirroredStrategy can reduce a tensor but not a dict.
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
        >>> dataset = stream.dataset()          # tf.data, float32 (32, 128, 128, 2): ir, vis
    """

    def __init__(self, store_path: str | os.PathLike, kinds: Sequence[str], batch_size: int, seed: int = 0,
                 window: int = 8, patch_size: int | None = None) -> None:
        self.store_path, self.kinds, self.batch_size = store_path, tuple(kinds), int(batch_size)
        self.seed, self.window = int(seed), int(window)
        with PatchStore(store_path, self.kinds, patch_size) as store:
            self.size, self.patch_size = len(store), store.patch_size
        if self.size < self.batch_size:
            raise StoreError(f"{store_path}: holds {self.size} patches, fewer than one batch of {self.batch_size}")
        self._store: PatchStore | None = None

    def open(self) -> PatchStore:
        """The store the batches are read from, opened once (in the calling thread) and kept open."""
        if self._store is None:
            self._store = PatchStore(self.store_path, self.kinds)
        return self._store

    def close(self) -> None:
        """Close the store.  Call it from the thread that trains, after ``fit``.

        The generators never close it themselves: tf.data finalizes a generator on one of
        its own threads, sometimes while the training thread writes a backup with h5py,
        and an h5py file closed there deadlocked both threads (seen once in CI, in a
        process that trained two runs one after the other).
        """
        if self._store is not None:
            self._store.close()
            self._store = None

    def __enter__(self) -> "PatchStream":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

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

    def batches(self, start: int = 0) -> Iterator[np.ndarray]:
        """Yield batches ``start, start + 1, ...`` forever, as uint8 (N, P, P, K) arrays of the stacked kinds."""
        store = self.open()
        epoch, skip = divmod(start, self.batches_per_epoch)
        skip *= self.batch_size
        while True:
            carry = np.zeros((0, self.patch_size, self.patch_size, len(self.kinds)), np.uint8)
            for window in self.epoch_windows(epoch):
                if skip >= len(window):
                    skip -= len(window)
                    continue
                carry = np.concatenate([carry, self._load_window(store, window[skip:])])
                skip = 0
                while len(carry) >= self.batch_size:
                    yield carry[:self.batch_size]
                    carry = carry[self.batch_size:]
            epoch += 1  # the partial batch left over is dropped

    def _load_window(self, store: PatchStore, indices: np.ndarray) -> np.ndarray:
        """Patches ``indices`` (in that order) of every kind, stacked; one contiguous read per run of indices."""
        ordered = np.sort(indices)
        runs = np.split(ordered, np.flatnonzero(np.diff(ordered) != 1) + 1)
        rows = np.searchsorted(ordered, indices)
        return np.concatenate([np.concatenate([store.read(kind, run[0], run[-1] + 1) for run in runs])[rows]
                               for kind in self.kinds], axis=-1)

    def dataset(self, start: int = 0):
        """A ``tf.data.Dataset`` of the stream from batch ``start`` as float32 (exact for 0..255), prefetched.

        float32 because the all-reduce Keras runs on one batch under a strategy (module
        docstring) takes no uint8 across workers.
        """
        import tensorflow as tf

        self.open()  # here, in the caller's thread, not in tf.data's
        spec = tf.TensorSpec((self.batch_size, self.patch_size, self.patch_size, len(self.kinds)), tf.uint8)
        dataset = tf.data.Dataset.from_generator(lambda: self.batches(start), output_signature=spec)
        return dataset.map(lambda batch: tf.cast(batch, tf.float32)).prefetch(tf.data.AUTOTUNE)
