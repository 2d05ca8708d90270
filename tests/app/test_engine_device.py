"""ENGINE_DEVICE: the device a process loads a study's models onto, chosen once and part of the model cache key."""

from __future__ import annotations

import pytest
import torch
from django.core.exceptions import ImproperlyConfigured

from reviewapp.bridge import models as bridge_models


@pytest.fixture
def empty_model_cache():
    bridge_models._model_cache.clear()
    yield bridge_models._model_cache
    bridge_models._model_cache.clear()


@pytest.mark.django_db
def test_with_engine_device_cpu_the_study_models_are_on_the_cpu_and_cached_per_device(
    tiny_study, settings, empty_model_cache
):
    settings.ENGINE_DEVICE = "cpu"

    loaded = bridge_models.load_study_models(tiny_study, discriminator=True)

    tensors = [t for module in (loaded.G, loaded.classifier, loaded.D) for t in module.state_dict().values()]
    assert tensors and {t.device for t in tensors} == {torch.device("cpu")}
    assert loaded.device == torch.device("cpu")
    assert {key[:2] for key in empty_model_cache} == {("G", "cpu"), ("C", "cpu"), ("D", "cpu")}


def test_auto_is_the_cpu_without_cuda(settings, monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    settings.ENGINE_DEVICE = "auto"

    assert bridge_models.engine_device() == torch.device("cpu")


def test_auto_is_the_first_gpu_when_pytorch_sees_cuda(settings, monkeypatch):
    # What a worker on a GPU machine chooses with no setting.
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "current_device", lambda: 0)
    settings.ENGINE_DEVICE = "auto"

    assert bridge_models.engine_device() == torch.device("cuda", 0)


def test_a_device_name_that_fits_nothing_is_a_configuration_error(settings):
    settings.ENGINE_DEVICE = "bogus"

    with pytest.raises(ImproperlyConfigured, match="ENGINE_DEVICE='bogus'.*auto, cpu, cuda or cuda:N"):
        bridge_models.engine_device()


def test_cuda_on_a_machine_without_one_is_a_configuration_error(settings, monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    settings.ENGINE_DEVICE = "cuda"

    with pytest.raises(ImproperlyConfigured, match="no CUDA GPU"):
        bridge_models.engine_device()


@pytest.mark.django_db
def test_the_models_go_to_the_device_the_setting_resolves_to(tiny_study, monkeypatch, empty_model_cache):
    # The "meta" device stands in for a GPU: what the bridge loads lands on the resolved device, cached for it.
    monkeypatch.setattr(bridge_models, "engine_device", lambda: torch.device("meta"))

    loaded = bridge_models.load_study_models(tiny_study, discriminator=True, ranges=False)

    assert loaded.device == torch.device("meta")
    assert {t.device for t in loaded.D.state_dict().values()} == {torch.device("meta")}
    assert {key[:2] for key in empty_model_cache} == {("G", "meta"), ("C", "meta"), ("D", "meta")}


@pytest.mark.django_db
def test_engine_compile_reaches_the_engine_in_projection_and_sweep(tiny_study, alice, settings, monkeypatch):
    """ENGINE_COMPILE (off by default) is passed to the engine's projection and sweep as compile_models."""
    from explain_engine import projection as engine_projection
    from explain_engine import sweep as engine_sweep
    from reviewapp.bridge import projection as bridge_projection
    from reviewapp.bridge import sweeps as bridge_sweeps
    from reviewapp.selectors.sweeps import sweep_projections
    from tests.helpers.studies import prepared_sweep, projected_cases

    seen: list[tuple[str, bool]] = []

    def spy(name, real):
        def call(*args, **kwargs):
            seen.append((name, kwargs["compile_models"]))
            return real(*args, **kwargs)

        return call

    monkeypatch.setattr(bridge_projection, "project_images", spy("project", engine_projection.project_images))
    monkeypatch.setattr(bridge_sweeps, "sweep_deltas", spy("sweep", engine_sweep.sweep_deltas))
    assert bridge_models.engine_compile() is False
    settings.ENGINE_COMPILE = True
    projected_cases(tiny_study, created_by=alice)
    sweep = prepared_sweep(tiny_study, created_by=alice)
    bridge_sweeps.SweepRunner(sweep, sweep_projections(sweep)).run_units([0])

    assert ("project", True) in seen and ("sweep", True) in seen
    assert all(flag for _, flag in seen)
