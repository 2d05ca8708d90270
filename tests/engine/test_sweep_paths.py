"""The CUDA execution paths of the sweep (bucketed batch shapes, compiled passes), exercised on the CPU where
they can be, and on a GPU by the tests marked ``gpu``."""

import numpy as np
import pytest
import torch

from explain_engine.device import CompiledOrEager, batch_bucket
from explain_engine.sweep import StyleSweeper, SweepConfig, _pad_rows, sweep_deltas
from tests.engine.test_sweep import setup  # noqa: F401 - the shared fixture

needs_cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")


def test_batch_buckets_are_powers_of_two_within_the_limit():
    assert [batch_bucket(n, 512) for n in (1, 16, 17, 100, 256, 257, 512)] == [16, 16, 32, 128, 256, 512, 512]
    assert batch_bucket(300, 300) == 300 and batch_bucket(200, 300) == 256 and batch_bucket(290, 300) == 300
    assert batch_bucket(5, 8) == 8


def test_padding_repeats_the_last_row():
    t = torch.arange(6.0).reshape(3, 2)
    padded = _pad_rows(t, 5)
    assert padded.shape == (5, 2)
    assert torch.equal(padded[:3], t) and torch.equal(padded[3:], t[-1:].expand(2, 2))
    assert _pad_rows(t, 3) is t


def test_padded_batches_give_the_same_deltas(setup):  # noqa: F811
    """The CUDA path's padded tail chunks (forced on here) leave every delta as the unpadded path has it."""
    G, clf, ranges, styles = setup
    cfg = SweepConfig(batch_size=24, image_chunk=2, dim_chunk=50)
    low, high = ranges.minimum, ranges.maximum
    plain = StyleSweeper(G, clf, low, high, cfg)
    padded = StyleSweeper(G, clf, low, high, cfg)
    padded.cuda = True  # what a CUDA device turns on: tails padded to a bucket, classifier in chunks
    calls = []
    padded._classifier_fn = lambda x: calls.append(x.shape[0]) or clf(x)
    dims = list(range(0, G.style_layout.dims, 3))
    with torch.inference_mode():
        a = plain.evaluate_clamped(plain.base_pass(styles[:2]), [0, 1] * len(dims), dims * 2)
        b = padded.evaluate_clamped(padded.base_pass(styles[:2]), [0, 1] * len(dims), dims * 2)
    assert torch.allclose(a, b, atol=1e-6)
    assert set(calls) <= {16, 24}, calls  # full batches, and tails padded to a bucket


def test_a_compiler_failure_falls_back_to_eager_with_a_warning():
    def double(x):
        return 2 * x

    fn = CompiledOrEager(double, name="double")

    def broken(*_args, **_kwargs):
        raise RuntimeError("no C++ compiler")

    fn._compiled = broken
    with pytest.warns(RuntimeWarning, match="torch.compile of double failed .*no C\\+\\+ compiler"):
        assert torch.equal(fn(torch.ones(2)), torch.full((2,), 2.0))
    assert fn.failed and torch.equal(fn(torch.ones(1)), torch.full((1,), 2.0))  # eager from then on


def test_out_of_memory_is_not_hidden_by_the_fallback():
    fn = CompiledOrEager(lambda x: x, name="identity")

    def oom(*_args, **_kwargs):
        raise torch.OutOfMemoryError("CUDA out of memory")

    fn._compiled = oom
    with pytest.raises(torch.OutOfMemoryError):
        fn(torch.ones(1))


def test_the_cpu_ignores_compile_models(setup):  # noqa: F811
    G, clf, ranges, styles = setup
    sweeper = StyleSweeper(G, clf, ranges.minimum, ranges.maximum, SweepConfig(), compile_models=True)
    assert not sweeper.compiled and sweeper._classifier_fn is clf


@pytest.mark.gpu
@needs_cuda
def test_compiled_and_eager_sweeps_agree_on_a_gpu(setup):  # noqa: F811
    G, clf, ranges, styles = setup
    device = torch.device("cuda")
    G, clf = G.to(device), clf.to(device)
    cfg = SweepConfig(batch_size=64, image_chunk=2, dim_chunk=10_000, bf16_on_cuda=False)
    eager = sweep_deltas(G, clf, styles[:2].to(device), ranges, config=cfg)
    compiled = sweep_deltas(G, clf, styles[:2].to(device), ranges, config=cfg, compile_models=True)
    assert np.abs(eager.deltas - compiled.deltas).max() < 1e-4


@pytest.mark.gpu
@needs_cuda
def test_layer_and_block_starts_agree_on_a_gpu(setup):  # noqa: F811
    """Channels-last features, bucketed batches and (in bf16) autocast, as a GPU runs them."""
    import copy

    G, clf, ranges, styles = setup
    device = torch.device("cuda")
    G, clf = copy.deepcopy(G).to(device), copy.deepcopy(clf).to(device)
    for bf16, tolerance in ((False, 1e-4), (True, 2e-2)):
        cfg = SweepConfig(batch_size=64, image_chunk=2, dim_chunk=10_000, bf16_on_cuda=bf16)
        layer = sweep_deltas(G, clf, styles[:2].to(device), ranges, config=cfg)
        block = sweep_deltas(G, clf, styles[:2].to(device), ranges, config=cfg, reuse="block")
        assert np.abs(layer.deltas - block.deltas).max() < tolerance, bf16
