"""Projection of cases into StyleSpace (papers/003 Eq. 2) and the stored style vectors it leaves."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict
from typing import Any

import numpy as np
import torch

from explain_engine import images as engine_images
from explain_engine.projection import ProjectionConfig, project_images
from reviewapp.bridge.cases import case_tensor
from reviewapp.bridge.files import file_sha256, media_path, npy_bytes, png_bytes, write_media
from reviewapp.bridge.models import AbortFn, ProgressFn, engine_compile, load_study_models


def project_to_files(
    study, projections: Sequence, *, progress_fn: ProgressFn, abort_fn: AbortFn
) -> list[dict[str, Any]]:
    """Project the cases of ``projections`` (one batch) and write their style vectors and reconstructions.

    Returns, per projection, the field values of its row. Raises ``InterruptedError`` when aborted.
    """
    models = load_study_models(study, discriminator=True)
    images = case_tensor([p.case for p in projections], channels=study.channels or models.G.img_channels)
    config = ProjectionConfig(steps=study.projection_steps, batch_size=max(len(projections), 1))
    result = project_images(
        images,
        models.G,
        classifier=models.classifier,
        D=models.D,
        init_styles=models.ranges.mean,
        config=config,
        progress_fn=progress_fn,
        abort_fn=abort_fn,
        compile_models=engine_compile(),
    )
    rows = []
    for i, projection in enumerate(projections):
        base = f"studies/{study.pk}/projections/{projection.pk}"
        styles = result.styles[i].detach().cpu().numpy().astype(np.float32)
        styles_name = write_media(f"{base}-styles.npy", npy_bytes(styles))
        recon_name = write_media(
            f"{base}-reconstruction.png", png_bytes(engine_images.to_uint8(result.reconstructions[i]))
        )
        facts = result.per_image(i)
        rows.append(
            {
                "config": asdict(config),
                "styles_file": styles_name,
                "styles_shape": [int(result.styles.shape[1])],
                "styles_dtype": "float32",
                "styles_sha256": file_sha256(media_path(styles_name)),
                "reconstruction": recon_name,
                "mse": facts["mse"],
                "psnr": _finite(facts["psnr"]),
                "ssim": facts["ssim"],
                "perceptual": _finite(facts["perceptual"]),
                "perceptual_kind": result.perceptual_kind,
                "prob_original": facts["prob_original"],
                "prob_reconstruction": facts["prob_reconstruction"],
                "seconds": result.seconds / max(len(projections), 1),
            }
        )
    return rows


def _finite(value: float) -> float | None:
    return value if np.isfinite(value) else None


def projection_styles(projection) -> np.ndarray:
    """One projection's stored style vector [D] float32."""
    styles = np.load(media_path(projection.styles_file.name), allow_pickle=False)
    return np.asarray(styles, dtype=np.float32).reshape(-1)


def load_styles(projections: Sequence) -> torch.Tensor:
    """The stored style vectors of ``projections`` stacked [N, D]."""
    return torch.from_numpy(np.stack([np.load(media_path(p.styles_file.name)) for p in projections]))
