"""The classifiers a study can explain: one contract, one module per adapter, one entry point.

* ``base``: the contract (``ImageClassifier``: images in [-1, 1] -> probability of one label) and what the
  adapters share;
* ``xrv``: TorchXRayVision DenseNets (``xrv:densenet121-res224-all``), never downloaded;
* ``torchvision_models``: a torchvision architecture with weights from a state-dict file;
* ``torchscript``: a TorchScript file;
* ``checkpoint``: this tool's classifier checkpoints (the demo CNN of ``explain_engine.demo.classifier``);
* ``registry``: classifier specs (``"demo"``, ``"xrv:<weights>"``, a path) and ``load_classifier``.

Every problem met while loading (missing file, wrong architecture, unknown pathology, unreadable file)
raises a ``ClassifierError`` whose message says what is wrong and what was expected.
"""

from .base import (
    DEFAULT_TARGET,
    ClassifierError,
    ImageClassifier,
    InputTransform,
    classifier_logit,
    predict_probabilities,
)
from .checkpoint import (
    CHECKPOINT_FORMAT,
    load_checkpoint_classifier,
    read_classifier_checkpoint,
    save_classifier,
)
from .registry import (
    DEMO_CLASSIFIER_PATH,
    KINDS,
    ClassifierSpec,
    is_builtin_classifier,
    load_classifier,
    parse_classifier_spec,
)
from .torchscript import TorchScriptClassifier, load_torchscript_classifier
from .torchvision_models import TorchvisionClassifier, load_torchvision_classifier
from .xrv import XRV_DEFAULT_WEIGHTS, XRVDenseNetClassifier, load_xrv_densenet, xrv_weights_path

__all__ = [
    "CHECKPOINT_FORMAT",
    "DEFAULT_TARGET",
    "DEMO_CLASSIFIER_PATH",
    "KINDS",
    "XRV_DEFAULT_WEIGHTS",
    "ClassifierError",
    "ClassifierSpec",
    "ImageClassifier",
    "InputTransform",
    "TorchScriptClassifier",
    "TorchvisionClassifier",
    "XRVDenseNetClassifier",
    "classifier_logit",
    "is_builtin_classifier",
    "load_checkpoint_classifier",
    "load_classifier",
    "load_torchscript_classifier",
    "load_torchvision_classifier",
    "load_xrv_densenet",
    "parse_classifier_spec",
    "predict_probabilities",
    "read_classifier_checkpoint",
    "save_classifier",
    "xrv_weights_path",
]
