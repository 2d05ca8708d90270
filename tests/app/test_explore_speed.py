"""Explore mode renders the demo model fast enough to follow a slider (under 300 ms per update on a CPU)."""

import statistics

import numpy as np
import pytest
from django.core.files.base import ContentFile

from explain_engine.classifiers import DEMO_CLASSIFIER_PATH
from reviewapp import explore
from reviewapp.management.commands.seed_demo import DEMO_GENERATOR
from tests.factories import ProjectionFactory, StudyFactory, npy_bytes

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("media_root"), pytest.mark.slow]


@pytest.fixture
def demo_projection():
    if not (DEMO_GENERATOR.exists() and DEMO_CLASSIFIER_PATH.exists()):
        pytest.skip(
            "The demo generator and classifier have not been trained yet (explain_engine/assets/demo)."
        )
    from explain_engine.checkpoints import load_generator

    dims = load_generator(DEMO_GENERATOR).style_layout.dims
    study = StudyFactory(generator_path=str(DEMO_GENERATOR), classifier_source="demo", style_dims=dims)
    styles = ContentFile(npy_bytes(np.zeros(dims, dtype=np.float32)), name="styles.npy")
    return ProjectionFactory(case__study=study, styles_file=styles)


def test_a_slider_update_of_the_demo_model_takes_under_300_ms(demo_projection):
    study = demo_projection.case.study
    explore.render(study=study, projection=demo_projection, changes={})  # loads and caches the models
    timings = [
        explore.render(study=study, projection=demo_projection, changes={3: float(value)}).milliseconds
        for value in np.linspace(-2, 2, 7)
    ]
    print(f"explore render of the demo model: median {statistics.median(timings):.0f} ms")
    assert statistics.median(timings) < 300, timings
