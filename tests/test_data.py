"""The tf.data stream: a seeded permutation per epoch, restartable at any batch, real store content, kinds stacked."""
import os

import numpy as np
import tensorflow as tf

from tf_twogan.data import PatchStream
from tf_twogan.store import PatchStore


def test_each_data_epoch_is_a_permutation_and_epochs_differ(mini_store):
    stream = PatchStream(mini_store, ("ir", "vis"), batch_size=8, seed=3, window=2)
    first, second = stream.epoch_order(0), stream.epoch_order(1)
    assert sorted(first) == list(range(stream.size)) == sorted(second)
    assert not np.array_equal(first, second)
    np.testing.assert_array_equal(first, PatchStream(mini_store, ("ir", "vis"), 8, seed=3, window=2).epoch_order(0))


def test_batches_hold_the_store_patches_in_epoch_order(mini_store):
    stream = PatchStream(mini_store, ("ir", "vis"), batch_size=8, seed=0, window=2)
    order = stream.epoch_order(0)
    batches = stream.batches()
    with PatchStore(mini_store) as store:
        ir, vis = store.read("ir", 0, len(store)), store.read("vis", 0, len(store))
    for b in range(stream.batches_per_epoch):
        batch = next(batches)
        assert batch.shape == (8, 128, 128, 2) and batch.dtype == np.uint8  # the kinds stacked in stream order
        np.testing.assert_array_equal(batch[..., :1], ir[order[b * 8:(b + 1) * 8]])
        np.testing.assert_array_equal(batch[..., 1:], vis[order[b * 8:(b + 1) * 8]])
    # the next batch opens data epoch 1 (the partial batch of epoch 0 is dropped)
    np.testing.assert_array_equal(next(batches)[..., :1], ir[stream.epoch_order(1)[:8]])


def test_restarting_at_batch_b_equals_the_uninterrupted_stream(mini_store):
    stream = PatchStream(mini_store, ("ir",), batch_size=5, seed=1, window=3)
    uninterrupted = stream.batches()
    reference = [next(uninterrupted) for _ in range(2 * stream.batches_per_epoch + 3)]
    for start in (0, 7, stream.batches_per_epoch, stream.batches_per_epoch + 4):
        restarted = stream.batches(start)
        for b in range(start, start + 3):
            np.testing.assert_array_equal(next(restarted), reference[b])


def test_dataset_yields_the_stacked_uint8_batches_exactly_as_float32(mini_store):
    # float32 because MultiWorkerMirroredStrategy cannot all-reduce uint8 (Keras reduces one batch before fit)
    stream = PatchStream(mini_store, ("ir", "vis"), batch_size=4)
    batch = next(iter(stream.dataset(start=3)))
    assert batch.dtype == tf.float32 and tuple(batch.shape) == (4, 128, 128, 2)
    np.testing.assert_array_equal(batch.numpy(), next(stream.batches(start=3)).astype(np.float32))


def open_handles(path) -> int:
    """How many file descriptors of this process point at ``path`` (from /proc/self/fd)."""
    count = 0
    for fd in os.listdir("/proc/self/fd"):
        try:
            count += os.readlink(f"/proc/self/fd/{fd}") == str(path)
        except OSError:
            pass
    return count


def test_a_finished_generator_leaves_the_store_open_and_only_close_shuts_it(mini_store, tmp_path):
    # tf.data finalizes a generator on a thread of its own; an h5py close there once deadlocked
    # with the training thread's backup write, so only the caller's close() may close the store
    import shutil

    mini_store = shutil.copy(mini_store, tmp_path / "store.h5")  # a file no other test holds open
    before = open_handles(mini_store)
    stream = PatchStream(mini_store, ("ir", "vis"), batch_size=4)
    generator = stream.batches()
    next(generator)
    generator.close()  # what tf.data's finalizer does
    assert open_handles(mini_store) == before + 1
    stream.close()
    assert open_handles(mini_store) == before
    with PatchStream(mini_store, ("ir",), batch_size=4) as again:
        assert next(again.batches()).shape == (4, again.patch_size, again.patch_size, 1)
    assert open_handles(mini_store) == before
