"""Figures of merit, one module per question:

* ``classification``: AUROC, accuracy, calibration of a classifier's probabilities;
* ``fidelity``: how close two images are (MSE, PSNR, SSIM, perceptual distance) and how real an image looks to
  a StyleGAN2 discriminator;
* ``gan``: KID, FID, precision and recall of a generator;
* ``fid``: the Frechet distance between feature sets, and the split FID that compares counterfactuals with
  real images without pairing any counterfactual with its own query.

What makes a counterfactual good (validity, locality, COUT) is in ``explain_engine.counterfactuals.evaluation``.
"""
