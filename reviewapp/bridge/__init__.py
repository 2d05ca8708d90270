"""Where ``explain_engine`` meets the app: the only package of ``reviewapp`` that imports the engine.

One module per concern; each loads, computes and writes files, and returns the field values of rows. None
saves a row: the services call these functions and write the rows, so a file always exists before the row
that points at it is committed.

- :mod:`~reviewapp.bridge.files`: paths under MEDIA_ROOT, atomic writes, hashes, PNG and ``.npy`` facts.
- :mod:`~reviewapp.bridge.models`: the engine device (``ENGINE_DEVICE``), a study's networks loaded once per
  process and device, checking a study's files, estimating its style ranges.
- :mod:`~reviewapp.bridge.cases`: recognising and converting uploaded radiographs, reading stored cases.
- :mod:`~reviewapp.bridge.projection`: projecting cases into StyleSpace, stored style vectors.
- :mod:`~reviewapp.bridge.sweeps`: sweep folders and units, selection, ranking and curation of images.
- :mod:`~reviewapp.bridge.rendering`: counterfactual images, flicker GIFs, stacks, explore-mode frames.
- :mod:`~reviewapp.bridge.lab`: the Counterfactual lab's methods, their options and their result files.
"""
