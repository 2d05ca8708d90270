"""Loading networks from stylegan2-ada-pytorch pickles and our own checkpoints, without running their code."""

import os
import pickle
import sys
import types

import pytest
import torch

from explain_engine.checkpoints import CheckpointError, load_discriminator, load_generator, save_networks
from explain_engine.stylegan2 import Discriminator, Generator
from tests.helpers.tiny import TINY_D, TINY_G


@pytest.fixture
def marker(tmp_path):
    return tmp_path / "code-was-run"


@pytest.fixture
def persistence_standin(marker):
    """A minimal stand-in of torch_utils.persistence: objects pickle as
    ``_reconstruct_persistent_obj(meta)`` with the module source code embedded in ``meta``."""
    pkg = types.ModuleType("torch_utils")
    mod = types.ModuleType("torch_utils.persistence")

    def _reconstruct_persistent_obj(meta):  # what unpickling would call; must never be called by us
        raise AssertionError("the real persistence hook was called")

    mod._reconstruct_persistent_obj = _reconstruct_persistent_obj
    sys.modules["torch_utils"], sys.modules["torch_utils.persistence"] = pkg, mod
    source = f"import pathlib\npathlib.Path({str(marker)!r}).write_text('pwned')\n"

    class Persistent:
        def __init__(self, module, init_kwargs):
            state = {
                "training": False,
                "_parameters": dict(module._parameters),
                "_buffers": dict(module._buffers),
                "_non_persistent_buffers_set": set(),
                "_init_kwargs": init_kwargs,
                "_modules": {k: Persistent(v, {}) for k, v in module._modules.items()},
            }
            self.meta = dict(
                type="class", version=6, module_src=source, class_name=type(module).__name__, state=state
            )

        def __reduce__(self):
            return (_reconstruct_persistent_obj, (self.meta,))

    _reconstruct_persistent_obj.__module__ = "torch_utils.persistence"
    _reconstruct_persistent_obj.__qualname__ = "_reconstruct_persistent_obj"
    yield Persistent
    del sys.modules["torch_utils"], sys.modules["torch_utils.persistence"]


@pytest.mark.parametrize("protocol", [2, 4])
def test_a_stylegan2_ada_network_pickle_loads_without_running_its_code(
    tmp_path, marker, persistence_standin, protocol
):
    torch.manual_seed(0)
    G, D = Generator(**TINY_G).eval(), Discriminator(**TINY_D).eval()
    with torch.no_grad():
        G.mapping.w_avg.normal_()
    data = {
        "G": persistence_standin(G, TINY_G),
        "G_ema": persistence_standin(G, TINY_G),
        "D": persistence_standin(D, TINY_D),
        "augment_pipe": None,
        "training_set_kwargs": {"path": "x"},
    }
    path = tmp_path / "network-snapshot.pkl"
    path.write_bytes(pickle.dumps(data, protocol=protocol))

    G2, D2 = load_generator(path), load_discriminator(path)

    assert not marker.exists()
    z = torch.randn(2, 16)
    with torch.no_grad():
        assert torch.equal(G(z, noise_mode="const"), G2(z, noise_mode="const"))
        x = torch.randn(4, 1, 16, 16)
        assert torch.equal(D(x), D2(x))
    assert torch.equal(G2.mapping.w_avg, G.mapping.w_avg)


def test_a_pickle_that_asks_to_run_code_is_refused_and_runs_nothing(tmp_path, marker):
    class Evil:
        def __reduce__(self):
            return (os.system, (f"touch {marker}",))

    path = tmp_path / "evil.pkl"
    path.write_bytes(pickle.dumps({"G_ema": Evil()}))
    with pytest.raises(CheckpointError, match="not allowed"):
        load_generator(path)
    assert not marker.exists()


def test_our_checkpoint_round_trips(tmp_path):
    torch.manual_seed(1)
    G, D = Generator(**TINY_G).eval(), Discriminator(**TINY_D).eval()
    path = save_networks(tmp_path / "net.pt", {"G_ema": G, "D": D}, metadata={"kimg": 1.0})
    G2, D2 = load_generator(path), load_discriminator(path)
    z = torch.randn(2, 16)
    with torch.no_grad():
        assert torch.equal(G(z), G2(z))
    assert G2.init_kwargs == G.init_kwargs
    assert not G2.training and not any(p.requires_grad for p in G2.parameters())
    assert D2.img_resolution == 16


@pytest.mark.parametrize(
    "content, reason",
    [
        (b"hello, not a checkpoint", "neither"),
        (b"\x80\x04\x95", "truncated"),
    ],
)
def test_files_that_are_not_checkpoints_get_a_clear_error(tmp_path, content, reason):
    path = tmp_path / "bad.pkl"
    path.write_bytes(content)
    with pytest.raises(CheckpointError, match=reason):
        load_generator(path)


def test_a_truncated_pt_file_gets_a_clear_error(tmp_path):
    path = save_networks(tmp_path / "net.pt", {"G_ema": Generator(**TINY_G)})
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(CheckpointError, match="not a readable checkpoint"):
        load_generator(path)


def test_a_missing_file_or_network_is_named(tmp_path):
    with pytest.raises(CheckpointError, match="not found"):
        load_generator(tmp_path / "nope.pt")
    path = save_networks(tmp_path / "g.pt", {"G_ema": Generator(**TINY_G)})
    with pytest.raises(CheckpointError, match="no network named"):
        load_discriminator(path)


def test_a_plain_torch_file_that_is_not_ours_is_refused(tmp_path):
    path = tmp_path / "weights.pt"
    torch.save({"state_dict": {}}, path)
    with pytest.raises(CheckpointError, match="not a network checkpoint"):
        load_generator(path)
