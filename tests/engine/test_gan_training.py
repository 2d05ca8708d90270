"""Training of the demo StyleGAN2 on a tiny configuration: checkpoints, resume, early stop, start from a file."""

import os
import signal

import numpy as np
import pytest
import torch

from explain_engine.checkpoints import load_discriminator, load_generator
from explain_engine.cli.common import stop_requested_on_signals
from explain_engine.demo.training.gan import GanTrainer, GanTrainingConfig, augment, train_gan

TINY = dict(resolution=16, channel_base=64, channel_max=16, z_dim=16, w_dim=16, mapping_layers=2)


def _config(total_images: int, **kw) -> GanTrainingConfig:
    return GanTrainingConfig(
        preset="demo64",
        overrides=TINY,
        batch_size=4,
        total_kimg=total_images / 1000,
        checkpoint_every_kimg=0.008,
        r1_interval=2,
        augment_interval=1,
        threads=1,
        **kw,
    )


@pytest.fixture(scope="module")
def images():
    return np.random.default_rng(0).integers(0, 256, size=(12, 16, 16), dtype=np.uint8)


def _kimg(network_file):
    return torch.load(network_file, map_location="cpu", weights_only=True)["metadata"]["kimg"]


def _state(out):
    return torch.load(out / "training-state.pt", map_location="cpu", weights_only=True)


def test_training_writes_a_loadable_network_and_resumes_where_it_stopped(tmp_path, images):
    net = train_gan(images, tmp_path, _config(16))
    assert _state(tmp_path)["images_seen"] == 16 and _state(tmp_path)["step"] == 4
    assert _kimg(net) == pytest.approx(0.016)
    G, D = load_generator(net), load_discriminator(net)
    assert G.img_resolution == 16 and D(torch.zeros(2, 1, 16, 16)).shape == (2, 1)
    before = {k: v.clone() for k, v in G.state_dict().items()}

    messages = []
    train_gan(images, tmp_path, _config(24), progress_fn=lambda d, t, m: messages.append((d, t, m)))
    st = _state(tmp_path)
    assert st["images_seen"] == 24 and st["step"] == 6  # continued, not restarted
    assert messages[-1][:2] == (24, 24) and "kimg 0.02/0.024" in messages[-1][2]
    after = load_generator(net).state_dict()
    assert any(not torch.equal(before[k], after[k]) for k in before)  # G_ema moved


def test_a_stop_request_saves_after_the_current_step(tmp_path, images):
    calls = []
    train_gan(images, tmp_path, _config(400), abort_fn=lambda: calls.append(1) or True)
    assert len(calls) == 1
    assert _state(tmp_path)["images_seen"] == 4
    assert _kimg(tmp_path / "network.pt") == pytest.approx(0.004)


def test_starting_from_a_network_file_takes_its_weights_and_its_image_count(tmp_path, images):
    first = train_gan(images, tmp_path / "a", _config(8))
    trainer = GanTrainer(_config(16), images)
    trainer.load_networks(first)
    shipped = load_generator(first).state_dict()
    assert trainer.images_seen == 8
    assert all(torch.equal(shipped[k], v) for k, v in trainer.G_ema.state_dict().items())
    train_gan(images, tmp_path / "b", _config(16), init_from=first)
    assert _state(tmp_path / "b")["images_seen"] == 16 and _state(tmp_path / "b")["step"] == 2


def test_a_mismatched_resolution_is_refused(images):
    with pytest.raises(ValueError, match="16px but the images are 8px"):
        GanTrainer(_config(4), images[:, :8, :8])


def test_augmentation_is_the_identity_at_p0_and_changes_images_differentiably_at_p1():
    gen = torch.Generator().manual_seed(0)
    x = torch.linspace(-1, 1, 2 * 16 * 16).view(2, 1, 16, 16).requires_grad_(True)
    assert augment(x, 0.0, gen) is x
    y = augment(x, 1.0, gen)
    assert y.shape == x.shape and not torch.allclose(y, x)
    y.sum().backward()
    assert x.grad is not None and x.grad.abs().sum() > 0


def test_augmentation_probability_rises_when_d_is_sure_of_the_reals(images):
    trainer = GanTrainer(_config(400, augment_speed_kimg=0.1), images)
    with torch.no_grad():
        trainer.D.b4.out.bias.fill_(100.0)  # every real logit positive: r_t = 1 > 0.6
    trainer.step()
    assert trainer.augment_p == pytest.approx(0.04)  # batch 4 * interval 1 / 100 images


def test_sigterm_asks_a_long_job_to_stop_and_a_second_one_interrupts():
    before = signal.getsignal(signal.SIGTERM)
    with stop_requested_on_signals() as stop:
        assert not stop()
        os.kill(os.getpid(), signal.SIGTERM)
        assert stop()
        with pytest.raises(KeyboardInterrupt):
            os.kill(os.getpid(), signal.SIGTERM)
    assert signal.getsignal(signal.SIGTERM) is before
