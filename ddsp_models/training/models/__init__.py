"""Models: `Model` base, `Autoencoder`, and `get_model` (gin: ``get_model.model = @models.X()``)."""
import gin

from ddsp_models.gin_utils import register
from ddsp_models.training.models.autoencoder import Autoencoder
from ddsp_models.training.models.model import Model


@register("models")
def get_model(model=gin.REQUIRED):
    """The model gin configures: ``get_model.model = @models.Autoencoder()``."""
    return model


__all__ = ["Autoencoder", "Model", "get_model"]

from ddsp_models.training.models.midi_autoencoder import MidiAutoencoder, ZMidiAutoencoder  # noqa: E402

__all__ += ["MidiAutoencoder", "ZMidiAutoencoder"]

from ddsp_models.training.models.inverse_synthesis import InverseSynthesis  # noqa: E402

__all__ += ["InverseSynthesis"]
