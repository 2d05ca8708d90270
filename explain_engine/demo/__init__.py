"""The demo study: what the embedded default needs and a real study does not.

* ``phantoms``: procedural chest radiograph phantoms with a planted pathology and a planted shortcut;
* ``classifier``: the small CNN with a loss-estimator head trained on them (``demo-cnn`` checkpoints);
* ``training``: training of that classifier and of the demo StyleGAN2 on the CPU;
* ``cases``: the demo study's held-out and review cases;
* ``validation``: checks that the pipeline finds the planted pathology and flags the shortcut.

The core of the engine never imports this package (an import-linter contract says so).
"""
