"""Counterfactual explanations of one query image, by several methods behind one interface.

``generate(image, classifier=C, target=0, method="gci", generator=G)`` returns a ``CounterfactualResult``:
the counterfactual image, the classifier's probability on it, the optimisation path (frames for a GIF), the
metrics of ``counterfactuals.metrics`` and the parameters used. ``generate_batch`` does the same for several
images. Methods (one module each):

* ``stylespace``: one StyleSpace dimension clamped to its range (papers/003), chosen by a screening sweep;
* ``gci``: generative counterfactual introspection, latent optimisation in StyleSpace with a lambda bisection
  (papers/002), criticisms and prototypes;
* ``dip``: deep image prior pre-image and counterfactual, with the loss-estimator regulariser (papers/000) or
  without it (the plain DIP baseline);
* ``disc``: deep inversion with a DIP or Fourier-feature INR prior, manifold consistency and progressive
  optimisation (papers/001);
* ``gradcam``, ``integrated_gradients``: saliency baselines (a heatmap; the "counterfactual" is the query);
* ``latentshift``: an autoencoder's latent code moved along the classifier's gradient (Cohen et al. 2021).
"""

from .api import METHODS, generate, generate_batch, make_config, save_path_gif, save_result
from .base import CounterfactualError, CounterfactualResult, resolve_target
from .dip import DIPConfig
from .disc import DISCConfig
from .evaluation import counterfactual_metrics, cout_score
from .gci import GCIConfig
from .latentshift import LatentShiftConfig
from .saliency import SaliencyConfig
from .stylespace import StyleSpaceConfig

__all__ = [
    "METHODS",
    "CounterfactualError",
    "CounterfactualResult",
    "DIPConfig",
    "DISCConfig",
    "GCIConfig",
    "LatentShiftConfig",
    "SaliencyConfig",
    "StyleSpaceConfig",
    "counterfactual_metrics",
    "cout_score",
    "generate",
    "generate_batch",
    "make_config",
    "resolve_target",
    "save_path_gif",
    "save_result",
]
