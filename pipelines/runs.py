"""What a run is: its folders, its gin configuration, and its trained model.

A run (``ae``, ``midiae``, ``zmidiae``, ``inverse``; see `pipelines.params`) lives in
``<runs_dir>/<run>/`` (checkpoints ``ckpt-<step>``, ``operative_config-<step>.gin``,
``losses.jsonl``, TensorBoard summaries). Its configuration is the run's ``gin_files``,
then bindings derived from the params (clip length, rates, sizes, steps, learning rate),
then the run's own ``gin_params``, which win.
"""
import dataclasses
import os

from pipelines.params import RUNS

# gin files added for the encoded-MIDI variant (no note annotations in the dataset).
MIDI_ENCODER_MIXIN = "models/midiae/mixins/midi_encoder.gin"
MIDI_RUNS = ("midiae", "zmidiae")
# Training data of the InverseSynthesis run: synthetic notes with their true controls
# zipped with the dataset (self-supervised + real audio), or the dataset alone.
INVERSE_DATASETS = {"zipped": "papers/icml2020/finetune_dataset.gin",
                    "audio": "datasets/prepared.gin"}
REVERB_FRAMES = 50  # frames of the MIDI models' FilteredNoiseReverb decay envelope


@dataclasses.dataclass(frozen=True)
class DatasetInfo:
    """What the prepared dataset holds (read from its TFDS metadata)."""
    data_dir: str
    config: str           # 'midi' (note annotations) or 'audio'
    sample_rate: int
    frame_rate: int
    n_samples: int        # per clip
    n_frames: int
    splits: dict          # {split: n_examples}
    instrument_ids: tuple = ()  # distinct `instrument_id`s over all splits (-1: unknown)

    @property
    def has_notes(self) -> bool:
        return self.config == "midi"


def dataset_info(data_dir: str) -> DatasetInfo:
    """Reads the prepared dataset's metadata (`PreparedTfdsProvider`); ValueError naming
    the folder when it is missing (run ``dvc repro dataset`` first)."""
    from ddsp_models.training.data import PreparedTfdsProvider

    try:
        provider = PreparedTfdsProvider(data_dir=data_dir, split="train")
    except (ValueError, FileNotFoundError) as error:
        raise ValueError(f"no prepared dataset in {data_dir!r} ({error}); run "
                         "`dvc repro dataset` first") from None
    splits = {name: int(split.num_examples)
              for name, split in provider.builder.info.splits.items()}
    return DatasetInfo(os.fspath(data_dir), provider.config, provider.sample_rate,
                       provider.frame_rate, provider.n_samples, provider.n_frames, splits,
                       tuple(int(i) for i in provider.distinct_values("instrument_id")))


def instrument_bindings(info: DatasetInfo) -> list[str]:
    """The instrument embedding's size from the data: ``OneHotEncoder.n_classes`` = the
    largest instrument id of any split + 1 (ids are General MIDI programs), so every clip
    has a class; with clips of unknown instrument (id -1) also ``unknown_id = -1`` (they
    get the zero embedding). Any other id outside the classes is an error at run time."""
    known = [i for i in info.instrument_ids if i >= 0]
    bindings = [f"OneHotEncoder.n_classes = {max(known, default=0) + 1}"]
    if any(i < 0 for i in info.instrument_ids):
        bindings.append("OneHotEncoder.unknown_id = -1")
    return bindings


def run_dir(params: dict, run: str) -> str:
    """``<train.runs_dir>/<run>``."""
    check_run(run)
    return os.path.join(params["train"]["runs_dir"], run)


def check_run(run: str) -> None:
    if run not in RUNS:
        raise ValueError(f"unknown run {run!r}; known runs: {RUNS}")


def notes_mode(params: dict, run: str, info: DatasetInfo) -> str:
    """``'ground_truth'`` or ``'encoded'`` for a MIDI run (``auto``: ground truth when the
    dataset has note annotations). Ground truth without annotations is an error."""
    mode = params["train"][run]["notes"]
    if mode == "auto":
        return "ground_truth" if info.has_notes else "encoded"
    if mode == "ground_truth" and not info.has_notes:
        raise ValueError(f"train.{run}.notes is 'ground_truth' but the dataset in "
                         f"{info.data_dir!r} has no note annotations (config "
                         f"{info.config!r}); use 'auto' or 'encoded'")
    return mode


def _reverb_samples(ae: dict, info: DatasetInfo, multiple_of: int = 1) -> int:
    """``train.ae.reverb_seconds`` in samples, rounded up to a multiple of `multiple_of`."""
    samples = max(1, int(round(ae["reverb_seconds"] * info.sample_rate)))
    return -(-samples // multiple_of) * multiple_of


def _splits(n_harmonics: int, noise_bands: int) -> str:
    return (f"(('amps', 1), ('harmonic_distribution', {n_harmonics}), "
            f"('noise_magnitudes', {noise_bands}))")


def _synth_bindings(info: DatasetInfo, ae: dict) -> list[str]:
    """Clip length, rates and the solo-instrument decoder's sizes (shared by the AE and
    the MIDI models' synthcoder, so a warm start matches shape for shape)."""
    return [
        f"Harmonic.n_samples = {info.n_samples}",
        f"Harmonic.sample_rate = {info.sample_rate}",
        f"FilteredNoise.n_samples = {info.n_samples}",
        f"F0LoudnessPreprocessor.time_steps = {info.n_frames}",
        f"F0PowerPreprocessor.time_steps = {info.n_frames}",
        f"F0PowerPreprocessor.frame_rate = {info.frame_rate}",
        f"F0PowerPreprocessor.sample_rate = {info.sample_rate}",
        f"RnnFcDecoder.rnn_channels = {ae['rnn_channels']}",
        f"RnnFcDecoder.ch = {ae['mlp_units']}",
        f"RnnFcDecoder.layers_per_stack = {ae['mlp_layers']}",
        f"RnnFcDecoder.output_splits = {_splits(ae['n_harmonics'], ae['noise_bands'])}",
    ]


def gin_config(params: dict, run: str, info: DatasetInfo) -> tuple[list[str], list[str]]:
    """``(gin_files, gin_bindings)`` of a run for this dataset."""
    check_run(run)
    train = params["train"]
    section, ae = train[run], train["ae"]
    files = list(section["gin_files"])
    bindings = [
        f"train.batch_size = {train['batch_size']}",
        f"Trainer.learning_rate = {train['learning_rate']}",
        f"Trainer.lr_decay_steps = {train['lr_decay_steps']}",
        "Trainer.checkpoints_to_keep = 2",
        f"PreparedTfdsProvider.data_dir = '{info.data_dir}'",
    ]
    if run in ("ae", "midiae", "zmidiae"):
        bindings += _synth_bindings(info, ae)
    if run == "ae":
        bindings.append(f"Reverb.reverb_length = {_reverb_samples(ae, info)}")
    if run in MIDI_RUNS:
        if notes_mode(params, run, info) == "encoded":
            files.append(MIDI_ENCODER_MIXIN)
            bindings += [f"HarmonicToMidiEncoder.rnn_channels = {section['rnn_channels']}",
                         f"HarmonicToMidiEncoder.ch = {section['mlp_units']}",
                         f"HarmonicToMidiEncoder.layers_per_stack = {section['mlp_layers']}"]
        bindings += [
            f"MidiToHarmonicDecoder.rnn_channels = {section['rnn_channels']}",
            f"MidiToHarmonicDecoder.ch = {section['mlp_units']}",
            f"MidiToHarmonicDecoder.layers_per_stack = {section['mlp_layers']}",
            "MidiToHarmonicDecoder.output_splits = "
            f"{_splits(ae['n_harmonics'], ae['noise_bands'])}",
            f"FilteredNoiseReverb.n_frames = {REVERB_FRAMES}",
            f"FilteredNoiseReverb.reverb_length = {_reverb_samples(ae, info, REVERB_FRAMES)}",
        ]
    if run == "zmidiae":
        bindings += instrument_bindings(info) + [
            f"ExpressionEncoder.rnn_channels = {section['rnn_channels']}",
            f"ExpressionEncoder.ch = {section['mlp_units']}",
            f"synth_z/ExpressionEncoder.z_dims = {section['z_dims']}",
            f"note_z/ExpressionEncoder.z_dims = {section['z_dims']}",
        ]
    if run == "inverse":
        files.append(INVERSE_DATASETS[section["mode"]])
        bindings += _inverse_bindings(section, info)
    bindings += list(section["gin_params"])
    return files, bindings


def _inverse_bindings(section: dict, info: DatasetInfo) -> list[str]:
    """InverseSynthesis sizes, clip length and rates, and the synthetic notes matched to
    them (same length, harmonics and noise bands as the model predicts)."""
    return [
        f"InverseSynthesis.n_samples = {info.n_samples}",
        f"InverseSynthesis.sample_rate = {info.sample_rate}",
        f"ResnetSinusoidalEncoder.size = '{section['encoder_size']}'",
        f"ResnetSinusoidalEncoder.n_sinusoids = {section['n_sinusoids']}",
        f"ResnetSinusoidalEncoder.n_noise_bands = {section['noise_bands']}",
        f"ResnetSinusoidalEncoder.sample_rate = {info.sample_rate}",
        f"ResnetSinusoidalEncoder.frame_rate = {info.frame_rate}",
        f"SinusoidalToHarmonicEncoder.n_harmonics = {section['n_harmonics']}",
        f"SinusoidalToHarmonicEncoder.rnn_channels = {section['rnn_channels']}",
        f"SinusoidalToHarmonicEncoder.ch = {section['mlp_units']}",
        f"SinusoidalToHarmonicEncoder.layers_per_stack = {section['mlp_layers']}",
        f"SinusoidalToHarmonicEncoder.sample_rate = {info.sample_rate}",
        f"SyntheticNotesProvider.n_seconds = {info.n_samples / info.sample_rate}",
        f"SyntheticNotesProvider.sample_rate = {info.sample_rate}",
        f"SyntheticNotesProvider.frame_rate = {info.frame_rate}",
        f"SyntheticNotesProvider.n_harmonics = {section['n_harmonics']}",
        f"SyntheticNotesProvider.n_noise_bands = {section['noise_bands']}",
    ]


def warm_start_source(params: dict, run: str) -> tuple[str | None, list[str]]:
    """``(checkpoint folder, restore_keys)`` a run starts from, or ``(None, [])``."""
    if run == "midiae" and params["train"]["midiae"]["warm_start"]:
        return run_dir(params, params["train"]["midiae"]["warm_start"]), ["synthcoder=decoder"]
    return None, []


def load_trained_model(folder: str, example_batch: dict):
    """The model of a finished run (`ddsp_models.training.run_folders.load_trained_model`:
    newest operative config and checkpoint, every variable verified); ValueError naming
    the folder when it has no operative config or checkpoint."""
    from ddsp_models.training.run_folders import load_trained_model as load

    return load(folder, example_batch)
