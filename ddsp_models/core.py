"""DSP core: unit conversions, resampling, oscillators, FFT convolution and filters.

`ddsp_models.core` is the one place to import these from, with the names, defaults and
argument order of the original DDSP 3.7.0 `ddsp.core`. The code lives in four modules:

  dsp_utils     input checks, nested-dict helpers, safe maths, unit conversions, the
                scaling functions of network outputs (exp_sigmoid, frequencies_*);
  resampling    resample (nearest / linear / cubic / window), upsample_with_windows;
  oscillators   angular_cumsum, oscillator banks, harmonic and wavetable synthesis, delays;
  filters       FFT convolution, impulse-response windows, frequency and sinc filters.

Conventions: float32 tensors, batch first. Frame-rate controls are `[batch, n_frames,
channels]`, audio `[batch, n_samples]`. Every function works eagerly and inside
`tf.function`, and is differentiable where the maths is. gin names are `core.<name>`.
"""
from ddsp_models.dsp_utils import *  # noqa: F401,F403
from ddsp_models.dsp_utils import __all__ as _dsp_utils_names
from ddsp_models.filters import *  # noqa: F401,F403
from ddsp_models.filters import __all__ as _filters_names
from ddsp_models.oscillators import *  # noqa: F401,F403
from ddsp_models.oscillators import __all__ as _oscillators_names
from ddsp_models.resampling import *  # noqa: F401,F403
from ddsp_models.resampling import __all__ as _resampling_names

__all__ = [*_dsp_utils_names, *_resampling_names, *_oscillators_names, *_filters_names]
