"""Records a tiny model folder of the original DDSP 3.7.0's ZMidiAutoencoder, for
tests/test_compat_zmidiae.py.

Run with the original's own environment (TF 2.15 / Keras 2), never the project's:

    /work/upstream-venv/bin/python scripts/golden/record_upstream_zmidiae.py [OUT_DIR]

The config is the original repository's ``models/midiae/z_midiae.gin``
(tests/data/upstream_gin) shrunk by gin bindings (8-channel convolutions, 4-6 latent
channels, 250 frames; the synths stay 4 s: the original builds them in Python). Its
synthcoder latent is an instrument embedding (`OneHotEncoder` with skip_expand=False:
resampled over time) plus MFCC-GRU features; its global latent the instrument embedding plus an
`ExpressionEncoder` pooled over time; its note latent an `ExpressionEncoder` pooled over
each note (`nn.pool_over_notes`, which returns the pair (mean, std)).

The original's config leaves the two priors commented out, and 3.7.0 ships no prior class;
without a note prior its model cannot run (it concatenates the global latent with the
(mean, std) pair and fails). This script therefore binds both priors to `GaussianPrior`
below, the maths of this package's `losses.GaussianPrior`: its loss is the weighted KL
divergence to N(0, 1), its call a sample with noise from a fixed stateless seed, so the two
implementations draw the same noise. The original model calls both as it does
(``_update_losses_dict(prior, z)`` then ``z = prior(z)``).

It trains 3 steps with the original's `train_util.train` on the shared synthetic dataset
(record_upstream_models.py, plus an ``instrument_id`` per example) and stores in
``golden.npz`` the inputs, the latents at each stage, the synth controls and harmonic
signals of both branches and the losses of a training call.
"""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import ddsp  # noqa: E402
import gin  # noqa: E402
import numpy as np  # noqa: E402
import record_upstream_models as shared  # noqa: E402
import tensorflow as tf  # noqa: E402
from ddsp.training import nn  # noqa: E402

N_INSTRUMENTS = 3
PRIOR_SEEDS = {"global_kl": 11, "note_kl": 12}
VAR_FLOOR = 1e-6  # added to a variance before its log (silent frames have std 0)


class GaussianPrior(ddsp.losses.Loss):
    """Loss: weight * KL(N(mean, var) || N(0, 1)), summed over channels, averaged over the
    rest; call: a sample mean + std * eps (eps ~ N(0, 1) from stateless seed (seed, 0)).
    z: a (mean, std) pair (the std without gradient: `pool_over_notes`' square root has a NaN
    gradient on its empty regions), or a tensor of (mean, log-variance) channel halves."""

    def __init__(self, weight=1.0, seed=0, name="gaussian_prior"):
        super().__init__(name=name)
        self.weight = weight
        self.seed = seed

    @staticmethod
    def moments(z):
        if isinstance(z, (tuple, list)):
            mean, std = z
            return mean, tf.stop_gradient(std) ** 2.0
        mean, log_var = tf.split(z, 2, axis=-1)
        return mean, tf.exp(log_var)

    def get_losses_dict(self, z):
        mean, var = self.moments(z)
        kl = 0.5 * (mean ** 2.0 + var - 1.0 - tf.math.log(var + VAR_FLOOR))
        return {self.name: self.weight * tf.reduce_mean(tf.reduce_sum(kl, axis=-1))}

    def call(self, z):
        mean, var = self.moments(z)
        eps = tf.random.stateless_normal(tf.shape(mean), seed=[self.seed, 0])
        return mean + var ** 0.5 * eps


gin.external_configurable(GaussianPrior, module="ddsp.losses")

BINDINGS = [
    f"F0LoudnessPreprocessor.time_steps = {shared.N_FRAMES}",
    "F0LoudnessPreprocessor.compute_loudness = False",  # 3.7.0's MIDI models hand it no audio
    "train.num_steps = 3",
    "MfccTimeDistributedRnnEncoder.rnn_channels = 8",
    "MfccTimeDistributedRnnEncoder.z_dims = 4",
    f"MfccTimeDistributedRnnEncoder.z_time_steps = {shared.N_FRAMES}",
    f"OneHotEncoder.vocab_size = {N_INSTRUMENTS}",
    "OneHotEncoder.n_dims = 4",
    "DilatedConvDecoder.ch = 8",
    "DilatedConvDecoder.layers_per_stack = 2",
    "DilatedConvDecoder.stacks = 1",
    "DilatedConvDecoder.output_splits = (('amplitudes', 1), ('harmonic_distribution', 12), ('magnitudes', 9))",
    "ee/ExpressionEncoder.z_dims = 6",
    "zn/ExpressionEncoder.z_dims = 6",
    "z/DilatedConvStack.ch = 8",
    "z/DilatedConvStack.layers_per_stack = 2",
    "z/DilatedConvStack.stacks = 1",
    "nn.FcStackOut.ch = 8",
    "nn.FcStackOut.n_out = 8",
    "nn.FcStackOut.layers = 1",
    "MidiToHarmonicDecoder.output_splits = (('f0_midi', 1), ('amplitudes', 1), "
    "('harmonic_distribution', 12), ('magnitudes', 9))",
    "dec/DilatedConvStack.ch = 8",
    "dec/DilatedConvStack.layers_per_stack = 2",
    "dec/DilatedConvStack.stacks = 1",
    "ZMidiAutoencoder.z_global_prior = @zg/losses.GaussianPrior()",
    "zg/GaussianPrior.weight = 0.5",
    f"zg/GaussianPrior.seed = {PRIOR_SEEDS['global_kl']}",
    "zg/GaussianPrior.name = 'global_kl'",
    "ZMidiAutoencoder.z_note_prior = @zn/losses.GaussianPrior()",
    "zn/GaussianPrior.weight = 0.25",
    f"zn/GaussianPrior.seed = {PRIOR_SEEDS['note_kl']}",
    "zn/GaussianPrior.name = 'note_kl'",
]


def example(seed, notes=True):
    """The shared example (note rolls, 4 s of audio) with an instrument id."""
    features = shared.example(seed, notes=True)
    features["instrument_id"] = np.int64(seed % N_INSTRUMENTS)
    return features


def z_golden(model, batch):
    """The ZMidiAutoencoder's numbers on `batch` (see the module doc). The filtered noise
    and the reverb are random: only deterministic outputs are kept."""
    features = {k: tf.convert_to_tensor(v) for k, v in batch.items()}
    golden = {f"input/{k}": v for k, v in batch.items() if k != "note_active_frame_indices"}  # velocities > 0
    pre = model.preprocess(dict(features))
    for key in ("f0_scaled", "ld_scaled", "f0_midi"):
        golden[f"features/{key}"] = pre[key].numpy()
    z_synth = model.z_synth_encode(pre)
    golden["z/synth"] = z_synth.numpy()
    _, synth_params = model.synthesize_audio(pre["f0_hz"], pre["db"], z=z_synth, return_params=True)
    amps, hd, noise = model.extract_harm_controls(synth_params)
    pre.update(amps_scaled=amps, hd_scaled=hd, noise_scaled=noise)
    q_pitch, q_vel, _ = model.get_gt_midi(pre)
    golden["z/global"] = model.z_global_encode(pre).numpy()
    frames = model.z_note_encoder(pre)["z"]
    golden["z/note_frames"] = frames.numpy()
    mean, std = model.z_note_encode(pre, q_pitch)
    golden["z/note_mean"], golden["z/note_std"] = mean.numpy(), std.numpy()
    golden["z/note_mask"] = nn.get_note_mask(q_pitch).numpy().astype(np.uint8)  # 0 / 1

    outputs = model(dict(features), training=False)
    # ('hd', 'hd_pred': the harmonic distributions of synth/ and midi/ below.)
    for key in ("z_global", "z_notes", "q_pitch", "q_vel", "f0_midi_pred", "amps", "noise", "amps_pred",
                "noise_pred", "f0_loss_weights", "pianoroll"):
        golden[f"outputs/{key}"] = outputs[key].numpy()
    z_midi = tf.concat([outputs["z_global"], outputs["z_notes"]], axis=-1)
    golden["z/midi_decoder"] = model.z_preconditioning_stack(z_midi).numpy()
    for branch, params in (("synth", outputs["synth_params"]), ("midi", outputs["midi_synth_params"])):
        harmonic = params["harmonic"]
        for key in ("amplitudes", "harmonic_distribution", "f0_hz"):
            golden[f"{branch}/harmonic/{key}"] = harmonic["controls"][key].numpy()
        golden[f"{branch}/harmonic/signal_every_16th"] = harmonic["signal"].numpy()[:, ::16]  # < 1 MB
        golden[f"{branch}/filtered_noise/magnitudes"] = params["filtered_noise"]["controls"]["magnitudes"].numpy()
    _, losses = model(dict(features), training=True, return_losses=True)
    for key, value in losses.items():
        golden[f"losses/{key}"] = np.float32(value.numpy())
    return golden


def main(argv):
    out_root = argv[1] if len(argv) > 1 else shared.DEFAULT_OUT
    shared.record("z_midiae", "models/midiae/z_midiae.gin", BINDINGS, out_root,
                  example_fn=example, golden_fn=z_golden)


if __name__ == "__main__":
    main(sys.argv)
