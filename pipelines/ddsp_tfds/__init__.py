"""TFDS builder of this project's prepared dataset (``ddsp_prepared``).

Importing the package registers `DdspPrepared` with TFDS, so that
``tfds.load('ddsp_prepared/midi', data_dir='data/tfds', download=False)`` works.
"""
from pipelines.ddsp_tfds.ddsp_prepared import DdspPrepared, DdspPreparedConfig  # noqa: F401
