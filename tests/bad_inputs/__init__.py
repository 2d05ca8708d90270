"""A corpus of hostile and broken input files, generated in memory (nothing large is committed).

``corpus`` builds every file: case images and DICOM files, zip archives, labels CSVs and checkpoints. The tests
that send them through every path that takes files live with the other tests (``tests/app/test_bad_inputs.py``
for the upload form, ``import_cases`` and study registration; ``tests/engine/test_bad_inputs.py`` for the
engine's readers and command line). ``python -m tests.bad_inputs.corpus OUT`` writes the corpus to a folder for
trying it by hand.
"""
