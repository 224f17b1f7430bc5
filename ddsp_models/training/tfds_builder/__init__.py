"""TFDS builder of the pipeline's prepared dataset (``ddsp_prepared``, stage ``dataset``).

Importing the package registers `DdspPrepared` with TFDS, so that
``tfds.load('ddsp_prepared/midi', data_dir='data/tfds', download=False)`` works. Reading
the built dataset needs no import: `ddsp_models.training.data.PreparedTfdsProvider` reads
it with `tfds.builder_from_directory`.
"""
from ddsp_models.training.tfds_builder.ddsp_prepared import DdspPrepared, DdspPreparedConfig

__all__ = ["DdspPrepared", "DdspPreparedConfig"]
