"""tunesmith.streams: batches run in parallel single-threaded streams give the same results as
one by one, report each batch once, stop on the first error and leave torch's threads as they
were; ``TUNESMITH_STREAMS`` chooses the count."""

from __future__ import annotations

import threading

import numpy as np
import pytest
import torch

from tunesmith.errors import UserInputError
from tunesmith.streams import STREAMS_ENV, run_streams, stream_count


def test_every_batch_runs_once_in_inference_mode_and_done_sees_each_in_the_caller():
    seen, done, inference, caller = [], [], [], threading.get_ident()
    done_threads = set()

    def work(batch):
        inference.append(torch.is_inference_mode_enabled())
        seen.append(batch)

    def finished(batch):
        done.append(batch)
        done_threads.add(threading.get_ident())

    run_streams(work, list(range(9)), 3, done=finished)
    assert sorted(seen) == sorted(done) == list(range(9))
    assert all(inference) and done_threads == {caller}


def test_streams_run_in_worker_threads_with_one_torch_thread_and_restore_the_count():
    threads, counts = set(), []
    before = torch.get_num_threads()

    def work(_batch):
        threads.add(threading.get_ident())
        counts.append(torch.get_num_threads())

    run_streams(work, list(range(6)), 2)
    assert threading.get_ident() not in threads and set(counts) == {1}
    assert torch.get_num_threads() == before


def test_one_stream_or_one_batch_runs_in_the_calling_thread_in_order():
    caller, order, threads = threading.get_ident(), [], set()

    def work(batch):
        order.append(batch)
        threads.add(threading.get_ident())

    run_streams(work, [3, 1, 2], 1)
    run_streams(work, [7], 4)
    assert order == [3, 1, 2, 7] and threads == {caller}


def test_the_first_error_is_raised_and_the_thread_count_is_restored():
    before = torch.get_num_threads()

    def work(batch):
        if batch == 2:
            raise ValueError("batch 2 is broken")

    with pytest.raises(ValueError, match="batch 2 is broken"):
        run_streams(work, list(range(5)), 2)
    assert torch.get_num_threads() == before


def test_parallel_matrix_products_equal_serial_ones():
    rng = np.random.default_rng(0)
    weight = torch.from_numpy(rng.standard_normal((64, 64)).astype(np.float32))
    inputs = [torch.from_numpy(rng.standard_normal((16, 64)).astype(np.float32)) for _ in range(8)]
    serial, parallel = {}, {}
    run_streams(lambda i: serial.__setitem__(i, inputs[i] @ weight), list(range(8)), 1)
    run_streams(lambda i: parallel.__setitem__(i, inputs[i] @ weight), list(range(8)), 2)
    assert all(torch.allclose(serial[i], parallel[i], atol=1e-5) for i in range(8))


def test_stream_count_follows_the_environment_then_torch_threads(monkeypatch):
    monkeypatch.setenv(STREAMS_ENV, "3")
    assert stream_count() == 3
    monkeypatch.delenv(STREAMS_ENV)
    assert stream_count() == torch.get_num_threads()
    for bad in ("two", "0"):
        monkeypatch.setenv(STREAMS_ENV, bad)
        with pytest.raises(UserInputError, match=STREAMS_ENV):
            stream_count()


def test_a_model_off_the_cpu_gets_one_stream(monkeypatch):
    monkeypatch.setenv(STREAMS_ENV, "4")

    class OnGpu(torch.nn.Module):
        def parameters(self, recurse=True):
            yield torch.nn.Parameter(torch.zeros(1, device="meta"))

    assert stream_count(OnGpu()) == 1
    assert stream_count(torch.nn.Linear(2, 2)) == 4
