"""Specification of the note heuristics (the original DDSP's eval/heuristic*.gin): short runs
removed, f0 jumps split notes, amplitude dips end them, notes get the rounded MIDI pitch of
their f0 and frame times in seconds."""
import numpy as np
import pytest

from ddsp_models.training import heuristics


def test_remove_short_drops_short_runs_but_keeps_one_reaching_the_end():
    on = np.array([1, 1, 0, 1, 1, 1, 0, 0, 1, 1], bool)
    np.testing.assert_array_equal(heuristics.remove_short(on, min_samples=3),
                                  [0, 0, 0, 1, 1, 1, 0, 0, 1, 1])
    assert on.tolist()[:2] == [True, True]  # the input is not modified


def test_pad_for_frame_gives_one_frame_per_value_padded_with_integer_edges():
    vec = np.array([2.7, 3.0, 4.0, 5.9])
    assert heuristics.pad_for_frame(vec, "front", 3).tolist() == [2.0, 2.0, 2.7, 3.0, 4.0, 5.9]
    assert heuristics.pad_for_frame(vec, "center", 4).tolist() == [2.0, 2.0, 2.7, 3.0, 4.0, 5.9, 5.0]
    assert heuristics.pad_for_frame(vec, "end", 2).tolist() == [2.7, 3.0, 4.0, 5.9, 5.0]
    with pytest.raises(ValueError, match="mode"):
        heuristics.pad_for_frame(vec, "both", 2)


def test_strided_freq_change_marks_jumps_and_silence_but_not_vibrato():
    f0 = np.full(100, 220.0)
    f0[50:] = 330.0
    f0 *= 2.0 ** (0.3 * np.sin(np.arange(100) / 3.0) / 12.0)  # +-0.3 semitone vibrato
    f0[90:] = 0.0
    steady = heuristics.strided_freq_change({"f0_hz": f0})
    # One boundary frame at the jump (marked by the shortest stride only), none in the
    # vibrato, and no note without f0.
    assert np.flatnonzero(~steady).tolist() == [50] + list(range(90, 100))


def test_segment_notes_cuts_runs_and_picks_rounded_midi_pitch():
    controls = {"f0_hz": np.concatenate([np.full(30, 261.0), np.full(40, 445.0)]),
                "harmonic/controls/amplitudes": np.full(70, 0.5)}
    on = np.ones(70, bool)
    on[30:35] = False
    sequence = heuristics.segment_notes(lambda c: on, heuristics.mean_f0, heuristics.median_amps, controls,
                                        frame_rate=100)
    assert [(n.pitch, n.start_time, n.end_time) for n in sequence.notes] == [(60, 0.0, 0.3), (69, 0.35, 0.7)]
    assert sequence.total_time == 0.7
    roll = heuristics.notes_to_pianoroll(sequence, 70, frame_rate=100)
    assert roll[:30, 60].tolist() == [127.0] * 30 and roll[35:, 69].min() == 127.0 and roll.sum() == 127 * 65


def test_midi_heuristic_finds_notes_separated_by_an_amplitude_dip():
    f0 = np.full(120, 220.0)
    amps = 0.5 * (1.0 + 0.1 * np.sin(np.arange(120) / 2.0))
    amps[58:62] = 1e-4
    sequence = heuristics.segment_notes_batch(controls_batch={
        "f0_hz": f0[None, :, None], "harmonic": {"controls": {"amplitudes": amps[None, :, None]}}})[0]
    assert [n.pitch for n in sequence.notes] == [57, 57]
    assert sequence.notes[0].end_time <= 58 / 250 and sequence.notes[1].start_time >= 62 / 250


def test_unbatch_splits_nested_dicts_and_skips_scalars():
    batch = {"f0_hz": np.zeros([2, 5]), "harmonic": {"controls": {"amplitudes": np.ones([2, 5, 1])}},
             "total_loss": np.float32(1.0), "unused": None}
    examples = heuristics.unbatch(batch)
    assert len(examples) == 2 and examples[1]["harmonic"]["controls"]["amplitudes"].shape == (5, 1)
    assert "total_loss" not in examples[0]
    with pytest.raises(ValueError, match="'b' has 3 examples"):
        heuristics.unbatch({"a": np.zeros([2]), "b": np.zeros([3])})
