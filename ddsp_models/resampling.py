"""Resampling of frame-rate controls to audio rate (and back); part of `ddsp_models.core`.

Frame convention (the original DDSP's, `add_endpoint=True`): with n frames over T samples,
frame i sits at sample i * T / n and the last frame holds for the final T / n samples. With
`add_endpoint=False` the first and last frames sit on the first and last samples.
"""
import tensorflow as tf

from ddsp_models.dsp_utils import ensure_3d, tf_float32

__all__ = ["resample", "upsample_with_windows", "center_crop", "RESAMPLE_METHODS", "window_segments",
           "rising_half_window"]

RESAMPLE_METHODS = ("nearest", "linear", "cubic", "window")
_RESIZE_OPS = {"nearest": tf.raw_ops.ResizeNearestNeighbor, "linear": tf.raw_ops.ResizeBilinear,
               "cubic": tf.raw_ops.ResizeBicubic}


def _resize_time(inputs: tf.Tensor, n_timesteps: int, method: str, add_endpoint: bool) -> tf.Tensor:
    """Image-style resize along axis 1 of `[batch, n_frames, width, channels]`.

    Output sample t reads the input at position p = t * n_frames / n_timesteps
    (add_endpoint=True; positions past the last frame hold it), or
    p = t * (n_frames - 1) / (n_timesteps - 1) (add_endpoint=False, ends aligned):
    'nearest' takes frame floor(p) (round(p) when ends are aligned), 'linear' interpolates
    the two neighbours, 'cubic' uses Keys' cubic convolution (a = -0.75) over four.
    """
    width = inputs.shape[2]
    size = tf.constant([int(n_timesteps), int(width)], tf.int32)
    return _RESIZE_OPS[method](images=inputs, size=size, align_corners=not add_endpoint,
                               half_pixel_centers=False)


def resample(inputs, n_timesteps: int, method: str = "linear", add_endpoint: bool = True) -> tf.Tensor:
    """Resamples frame controls along time (axis 1).

    Args:
      inputs: `[n_frames]`, `[batch, n_frames]`, `[batch, n_frames, channels]` or
        `[batch, n_frames, n_freq, channels]` (not for 'window').
      n_timesteps: output length along time.
      method: 'nearest', 'linear', 'cubic' (see _resize_time) or 'window' (Hann-window
        overlap-add, upsampling only; see upsample_with_windows).
      add_endpoint: True: frame i at sample i * n_timesteps / n_frames, the last frame held
        for the final segment. False: the first and last frames on the first and last
        samples, n_frames - 1 segments.

    Returns:
      The resampled tensor, with the rank of `inputs`.

    Raises:
      ValueError: for an unknown `method`, or 'window' with 4-D input.
    """
    inputs = tf_float32(inputs, "inputs")
    rank = inputs.shape.rank
    if rank not in (1, 2, 3, 4):
        raise ValueError(f"resample: `inputs` must have rank 1 to 4, got shape {inputs.shape.as_list()}.")
    if method not in RESAMPLE_METHODS:
        raise ValueError(f"resample: `method` must be one of {list(RESAMPLE_METHODS)}, got {method!r}.")
    x = inputs if rank in (3, 4) else ensure_3d(inputs, "inputs")
    if method == "window":
        if rank == 4:
            raise ValueError("resample: method 'window' supports `inputs` of rank 1 to 3, got rank 4.")
        outputs = upsample_with_windows(x, n_timesteps, add_endpoint)
    elif rank == 4:
        outputs = _resize_time(x, n_timesteps, method, add_endpoint)
    else:
        outputs = _resize_time(x[:, :, tf.newaxis, :], n_timesteps, method, add_endpoint)[:, :, 0, :]
    if rank == 1:
        return outputs[0, :, 0]
    if rank == 2:
        return outputs[:, :, 0]
    return outputs


def window_segments(inputs: tf.Tensor, n_timesteps: int, add_endpoint: bool = True):
    """The segments of Hann-window upsampling: (start values, end values, hop).

    Segment i spans samples [i * hop, (i + 1) * hop) and goes from `start[:, i]` to
    `end[:, i]` along the rising half window (see upsample_with_windows). With add_endpoint
    there are n_frames segments (the last one holds the last frame), otherwise n_frames - 1.

    Raises:
      ValueError: when downsampling, or when n_timesteps is not a multiple of the number of
        segments.
    """
    n_frames = inputs.shape[1]
    if n_frames is None:
        raise ValueError("upsample_with_windows needs a static number of frames (axis 1).")
    n_segments = n_frames if add_endpoint else n_frames - 1
    if n_frames + int(add_endpoint) >= n_timesteps or n_segments < 1:
        raise ValueError(f"upsample_with_windows cannot downsample: {n_frames} frames to {n_timesteps} "
                         "timesteps.")
    if n_timesteps % n_segments:
        minus_one = "" if add_endpoint else " - 1"
        raise ValueError(
            f"upsample_with_windows: n_timesteps ({n_timesteps}) must be a multiple of the number of "
            f"frames{minus_one} ({n_segments}) with add_endpoint={add_endpoint}.")
    if add_endpoint:
        start, end = inputs, tf.concat([inputs[:, 1:], inputs[:, -1:]], axis=1)
    else:
        start, end = inputs[:, :-1], inputs[:, 1:]
    return start, end, n_timesteps // n_segments


def rising_half_window(hop: int) -> tf.Tensor:
    """First half of a periodic Hann window of 2 * hop samples: sin^2(pi t / (2 hop)), `[hop]`."""
    return tf.signal.hann_window(2 * hop, periodic=True)[:hop]


def upsample_with_windows(inputs, n_timesteps: int, add_endpoint: bool = True) -> tf.Tensor:
    """Upsamples frames by overlap-adding Hann windows (smooth amplitude envelopes).

    Every frame is spread over a periodic Hann window of 2 * hop samples centred on its
    position; the windows overlap by half and sum to one. Computed in closed form: inside
    segment i the output is start + (end - start) * sin^2(pi t / (2 hop)), t = 0 .. hop - 1
    (see window_segments), which equals the overlap-add.

    Args:
      inputs: `[batch, n_frames, channels]`.
      n_timesteps: output length; a multiple of n_frames (add_endpoint) or n_frames - 1.
      add_endpoint: hold the last frame for a final segment (True), or end on it (False).

    Returns:
      `[batch, n_timesteps, channels]`.

    Raises:
      ValueError: for input that is not 3-D, downsampling, or a length that does not divide.
    """
    inputs = tf_float32(inputs, "inputs")
    if inputs.shape.rank != 3:
        raise ValueError(f"upsample_with_windows: `inputs` must be [batch, n_frames, channels], got shape "
                         f"{inputs.shape.as_list()}.")
    start, end, hop = window_segments(inputs, int(n_timesteps), add_endpoint)
    ramp = rising_half_window(hop)[:, tf.newaxis]  # [hop, 1]
    blocks = start[:, :, tf.newaxis, :] + (end - start)[:, :, tf.newaxis, :] * ramp  # [b, segs, hop, c]
    return tf.reshape(blocks, [tf.shape(inputs)[0], int(n_timesteps), -1])


def center_crop(audio, frame_size: int) -> tf.Tensor:
    """Removes frame_size // 2 samples from each end (undoes 'center' padding), `[batch, time, ...]`."""
    pad_amount = int(frame_size // 2)
    return audio[:, pad_amount:-pad_amount]

