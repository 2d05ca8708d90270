"""Counterfactuals judged by an oracle: a second classifier, trained apart from the one that was explained.

A counterfactual is made *for* one classifier: its method reads that classifier's gradients, so it can reach
the target class by features only that classifier responds to (an adversarial edit) rather than by changing
what the label means. An oracle, trained independently (another seed, another architecture, other phantoms of
the same distribution), has no such features in common with it by construction; when it, too, assigns the
counterfactual to the target class, the change is one that more than one model reads as the label
("counterfactual alignment").

``oracle_metrics`` gives, per counterfactual (P_O = the oracle's probability of the label, P_O,t = of the
target class; decisions at 0.5):

* ``oracle_reached_target``: 1 if P_O,t(x') >= 0.5, the oracle's verdict on validity;
* ``oracle_flipped``: 1 if the oracle's decision on x' differs from its decision on the query x;
* ``oracle_target_probability_change``: P_O,t(x') - P_O,t(x);
* ``oracle_agreement``: 1 if the oracle and the explained classifier decide the same on x';
* ``oracle_probability`` and ``oracle_probability_query``: P_O(x') and P_O(x); ``classifier_probability``:
  the explained classifier's P(x') on the image as given.

``oracle_features`` returns the oracle's penultimate features (the globally pooled output of its last
block), the feature space of the split FID (``explain_engine.metrics.fid.split_fid``): the classifier that was
explained could have been driven toward its own feature statistics, the oracle's are independent of the
optimisation.

The demo ships an oracle, ``explain_engine/assets/demo/oracle_classifier.pt`` (``load_oracle()``); nothing is
ever downloaded, and a missing file raises ``ClassifierError`` saying where it belongs and how to make it.
"""

from __future__ import annotations

import math
import os
from pathlib import Path

import numpy as np
import torch

from ..classifiers import ClassifierError, ImageClassifier, load_classifier, predict_probabilities
from ..metrics.gan import classifier_features
from .base import CounterfactualError, as_image_batch

__all__ = [
    "DEMO_ORACLE_PATH",
    "ORACLE_TRAINING_COMMAND",
    "load_oracle",
    "oracle_features",
    "oracle_metrics",
]

DEMO_ORACLE_PATH = Path(__file__).resolve().parent.parent / "assets" / "demo" / "oracle_classifier.pt"
# How the shipped oracle was made (docs/demo-models.md); printed when it is missing.
ORACLE_TRAINING_COMMAND = (
    "python -m explain_engine train-classifier --arch demo-plain-cnn --size 64 --seed 1 --phantom-seed 200 "
    "--threads 1 --out explain_engine/assets/demo/oracle_classifier.pt"
)


def load_oracle(
    path: str | os.PathLike | None = None, *, device: str | torch.device = "cpu"
) -> ImageClassifier:
    """The oracle classifier in ``path`` (default: the demo's, ``DEMO_ORACLE_PATH``), frozen, on ``device``.

    Raises ``ClassifierError`` when the file is missing (naming where to put it) or is not a classifier.
    """
    path = Path(path) if path is not None else DEMO_ORACLE_PATH
    if not path.is_file():
        raise ClassifierError(
            f"oracle classifier not found: {path}. Put an independently trained classifier checkpoint there "
            f"(the demo's is made by `{ORACLE_TRAINING_COMMAND}`) or name another file"
        )
    return load_classifier(path, device=device)


def _decision(probability: np.ndarray) -> np.ndarray:
    return (probability >= 0.5).astype(np.int64)


def oracle_metrics(
    oracle: ImageClassifier,
    queries: torch.Tensor,
    counterfactuals: torch.Tensor,
    targets,
    *,
    classifier: ImageClassifier | None = None,
    batch_size: int = 64,
) -> list[dict]:
    """The oracle's verdict on each counterfactual (see the module text), one flat dict of floats per image.

    Args:
        oracle: the second classifier (same label as the explained one).
        queries: the query images ``[N, C, H, W]`` in [-1, 1].
        counterfactuals: the counterfactual of each query, ``[N, C, H, W]`` in [-1, 1].
        targets: the target class (0 or 1) of each counterfactual, ``[N]``.
        classifier: the explained classifier; without it ``oracle_agreement`` and ``classifier_probability``
            are NaN.
        batch_size: images per forward pass.
    """
    queries = as_image_batch(queries, name="queries")
    counterfactuals = as_image_batch(counterfactuals, name="counterfactuals")
    if queries.shape != counterfactuals.shape:
        raise CounterfactualError(
            f"queries and counterfactuals must pair up: {tuple(queries.shape)} vs {tuple(counterfactuals.shape)}"
        )
    t = np.asarray(targets, dtype=np.int64).reshape(-1)
    if t.shape[0] != queries.shape[0] or not np.isin(t, (0, 1)).all():
        raise CounterfactualError(f"targets must be {queries.shape[0]} values of 0 or 1, got {t.tolist()}")
    p_query = predict_probabilities(oracle, queries, batch_size=batch_size).double().numpy()
    p_cf = predict_probabilities(oracle, counterfactuals, batch_size=batch_size).double().numpy()
    p_t_query = np.where(t == 1, p_query, 1 - p_query)
    p_t_cf = np.where(t == 1, p_cf, 1 - p_cf)
    if classifier is not None:
        p_classifier = (
            predict_probabilities(classifier, counterfactuals, batch_size=batch_size).double().numpy()
        )
        agreement = (_decision(p_cf) == _decision(p_classifier)).astype(np.float64)
    else:
        p_classifier = np.full_like(p_cf, math.nan)
        agreement = np.full_like(p_cf, math.nan)
    return [
        {
            "oracle_reached_target": float(p_t_cf[i] >= 0.5),
            "oracle_flipped": float(_decision(p_cf[i : i + 1])[0] != _decision(p_query[i : i + 1])[0]),
            "oracle_target_probability_change": float(p_t_cf[i] - p_t_query[i]),
            "oracle_agreement": float(agreement[i]),
            "oracle_probability": float(p_cf[i]),
            "oracle_probability_query": float(p_query[i]),
            "classifier_probability": float(p_classifier[i]),
        }
        for i in range(t.shape[0])
    ]


def oracle_features(oracle: ImageClassifier, images: torch.Tensor, *, batch_size: int = 128) -> np.ndarray:
    """The oracle's penultimate features ``[N, D]`` (float64): its last block's output, globally average-pooled
    (the vector its linear head reads)."""
    layer = oracle.default_feature_layers[-1] if oracle.default_feature_layers else None
    features, _ = classifier_features(
        oracle, as_image_batch(images, name="images"), layer=layer, batch_size=batch_size
    )
    return features.astype(np.float64)
