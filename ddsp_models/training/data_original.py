"""The original DDSP's remaining data-provider names, with its arguments and behaviour
(re-exported by `ddsp_models.training.data`).

- `ExperimentalDataProvider`: a dataset saved with ``tf.data.Dataset.save``.
- `BaseMultiProvider` / `MixedProvider`: several providers of one sample and frame rate;
  `MixedProvider` draws each example from provider i with probability
  ``batch_size_ratios[i] / sum(batch_size_ratios)`` (equal by default).
- ``CREPE_SAMPLE_RATE`` (Hz) and ``CREPE_FRAME_SIZE`` (samples): the rate and frame of the
  pitch tracker, which the original's records keep ``audio_16k`` at.
"""
import tensorflow as tf

from ddsp_models.crepe import FRAME_SIZE as CREPE_FRAME_SIZE  # noqa: F401 - original name
from ddsp_models.crepe import MODEL_SAMPLE_RATE as CREPE_SAMPLE_RATE  # noqa: F401
from ddsp_models.gin_utils import register
from ddsp_models.training.data import DataProvider


@register("data")
class ExperimentalDataProvider(DataProvider):
    """Examples saved with ``tf.data.Dataset.save`` (the original's
    ``tf.data.experimental.save``) in `data_dir`; read in their stored order."""

    def __init__(self, data_dir, sample_rate, frame_rate):
        super().__init__(sample_rate, frame_rate)
        self.data_dir = data_dir

    def get_dataset(self, shuffle=True):
        del shuffle  # as the original: the stored order
        try:
            return tf.data.Dataset.load(self.data_dir)
        except (tf.errors.OpError, ValueError, FileNotFoundError) as error:
            raise ValueError(f"ExperimentalDataProvider: data_dir {self.data_dir!r} holds no saved "
                             f"tf.data dataset ({str(error).splitlines()[0]})") from None


@register("data")
class BaseMultiProvider(DataProvider):
    """Base of providers combining `data_providers` (same sample and frame rates).

    Args:
      data_providers: the providers.
      batch_size_ratios: relative share of each provider (normalised to sum to 1); empty:
        1.0 each.
    """

    def __init__(self, data_providers, batch_size_ratios=()):
        data_providers = list(data_providers)
        if not data_providers:
            raise ValueError(f"{type(self).__name__}: `data_providers` is empty")
        if batch_size_ratios:
            if len(batch_size_ratios) != len(data_providers):
                raise ValueError(f"{type(self).__name__}: {len(batch_size_ratios)} "
                                 f"batch_size_ratios for {len(data_providers)} data_providers")
            total = float(sum(batch_size_ratios))
            batch_size_ratios = [float(r) / total for r in batch_size_ratios]
        else:
            batch_size_ratios = [1.0] * len(data_providers)
        for rate in ("sample_rate", "frame_rate"):
            values = {getattr(p, rate) for p in data_providers}
            if len(values) > 1:
                raise ValueError(f"{type(self).__name__}: data_providers disagree on {rate}: "
                                 f"{[getattr(p, rate) for p in data_providers]}")
        super().__init__(data_providers[0].sample_rate, data_providers[0].frame_rate)
        self._data_providers = data_providers
        self._batch_size_ratios = batch_size_ratios


@register("data")
class MixedProvider(BaseMultiProvider):
    """Examples sampled from the providers with the (normalised) ratios as probabilities."""

    def get_dataset(self, shuffle=True):
        datasets = [p.get_dataset(shuffle) for p in self._data_providers]
        return tf.data.Dataset.sample_from_datasets(datasets, weights=self._batch_size_ratios,
                                                    seed=getattr(self, "seed", None))
