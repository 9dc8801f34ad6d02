"""The `lmcodec` command line, called in-process: the file commands, and one-line errors with exit code 2."""

from __future__ import annotations

import numpy as np
import pytest
import soundfile as sf

import lmcodec
from lmcodec.cli import main
from tests.conftest import speech_like


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    import torch

    from tests.conftest import random_codebooks, tiny_config

    torch.manual_seed(0)
    folder = tmp_path_factory.mktemp("model")
    lmcodec.save_checkpoint(random_codebooks(lmcodec.LMCodecModel(tiny_config())), folder)
    return str(folder)


@pytest.fixture
def stereo_file(tmp_path):
    path = tmp_path / "in.flac"
    sf.write(path, np.stack([speech_like(1.3, 22050), speech_like(1.3, 22050, seed=1)], axis=1), 22050)
    return path


def test_encode_info_decode(tmp_path, stereo_file, checkpoint, capsys):
    stream = tmp_path / "speech.lmc"
    assert main(["encode", str(stereo_file), str(stream), "--model", checkpoint, "--coarse", "3"]) == 0
    assert "kbps" in capsys.readouterr().out
    assert main(["info", str(stream)]) == 0
    info = capsys.readouterr().out
    assert "3 coarse sent of 4" in info and "original file 22050 Hz" in info
    out = tmp_path / "out.wav"
    assert main(["decode", str(stream), str(out), "--model", checkpoint]) == 0
    assert sf.info(out).samplerate == 16000 and abs(sf.info(out).frames - round(1.3 * 16000)) <= 1
    back = tmp_path / "back.wav"
    assert main(["decode", str(stream), str(back), "--model", checkpoint, "--original-rate"]) == 0
    assert sf.info(back).samplerate == 22050 and sf.info(back).frames == round(1.3 * 22050)
    # The fine-level decoding is the receiver's choice: same stream, other audio; the default is the config's.
    decoded = {}
    for decoding in ("sample", "greedy", "coarse-only"):
        path = tmp_path / f"{decoding}.wav"
        assert main(["decode", str(stream), str(path), "--model", checkpoint, "--fine-decoding", decoding]) == 0
        decoded[decoding] = sf.read(path)[0]
    assert np.array_equal(decoded["coarse-only"], sf.read(out)[0])
    assert not np.array_equal(decoded["greedy"], decoded["coarse-only"])
    assert not np.array_equal(decoded["sample"], decoded["greedy"])


def test_roundtrip_prints_rate_and_speed(tmp_path, stereo_file, checkpoint, capsys):
    assert main(["roundtrip", str(stereo_file), str(tmp_path / "rt.wav"), "--model", checkpoint]) == 0
    printed = capsys.readouterr().out
    assert "kbps (all bytes" in printed and "real-time factor" in printed


def test_demo_on_a_generated_file(tmp_path, capsys):
    source = tmp_path / "in.wav"
    sf.write(source, speech_like(1.1), 16000)
    output = tmp_path / "out.wav"
    assert main(["demo", str(source), "--output", str(output), "--coarse", "2"]) == 0
    printed = capsys.readouterr().out
    assert "kbps" in printed and "2 coarse levels" in printed and "default checkpoint" in printed
    assert sf.info(output).samplerate == 16000


def expect_error(capsys, argv, message, leftover=None):
    assert main(argv) == 2
    error = capsys.readouterr().err
    assert error.count("\n") == 1 and message in error and "Traceback" not in error, error
    if leftover is not None:
        assert not leftover.exists()


def test_bad_inputs_are_one_line_errors(tmp_path, stereo_file, checkpoint, capsys):
    model = ["--model", checkpoint]
    out = tmp_path / "out.lmc"
    expect_error(capsys, ["encode", str(tmp_path / "missing.wav"), str(out), *model], "input file not found", out)
    expect_error(capsys, ["encode", str(tmp_path), str(out), *model], "is a directory", out)
    text = tmp_path / "notes.txt"
    text.write_text("hello")
    expect_error(capsys, ["encode", str(text), str(out), *model], "as audio", out)
    empty = tmp_path / "empty.wav"
    sf.write(empty, np.zeros(0, dtype=np.float32), 16000)
    expect_error(capsys, ["encode", str(empty), str(out), *model], "zero length", out)
    expect_error(capsys, ["encode", str(stereo_file), str(tmp_path / "no" / "dir" / "x.lmc"), *model],
                 "does not exist")
    expect_error(capsys, ["encode", str(stereo_file), str(out), *model, "--coarse", "1"], "not an operating point")
    expect_error(capsys, ["encode", str(stereo_file), str(out), "--model", str(tmp_path)], "not an LMCodec checkpoint")
    expect_error(capsys, ["encode", str(stereo_file), str(out), "--model", "./nope"], "no such checkpoint folder: ./nope")
    expect_error(capsys, ["encode", str(stereo_file), str(out), "--model", str(tmp_path / "a" / "b")],
                 "no such checkpoint folder")
    expect_error(capsys, ["encode", str(stereo_file), str(tmp_path), *model],
                 f"it is a directory; give a file name such as {tmp_path / 'speech.lmc'}")
    # A Hub repo id goes through from_pretrained; offline and not cached, it fails at once with one line.
    expect_error(capsys, ["encode", str(stereo_file), str(out), "--model", "nobody/no-such-lmcodec"],
                 "cannot load model nobody/no-such-lmcodec", out)


def test_bad_streams_are_one_line_errors(tmp_path, stereo_file, checkpoint, capsys):
    model = ["--model", checkpoint]
    stream = tmp_path / "s.lmc"
    assert main(["encode", str(stereo_file), str(stream), *model]) == 0
    capsys.readouterr()
    data = stream.read_bytes()
    out = tmp_path / "out.wav"
    cases = {
        "wav.lmc": (b"RIFF" + data[4:], "not an LMCodec stream"),
        "future.lmc": (data[:4] + bytes([9]) + data[5:], "newer than this lmcodec"),
        "cut.lmc": (data[: len(data) - 5], "truncated"),
        "corrupt.lmc": (data[:20] + bytes([data[20] ^ 1]) + data[21:], "corrupted"),
    }
    for name, (content, message) in cases.items():
        (tmp_path / name).write_bytes(content)
        expect_error(capsys, ["decode", str(tmp_path / name), str(out), *model], message, out)
    expect_error(capsys, ["decode", str(stream), str(out)], "decode with the model that encoded it", out)
    expect_error(capsys, ["decode", str(stream), str(tmp_path), *model],
                 f"it is a directory; give a file name such as {tmp_path / 'out.wav'}")


def test_partial_decode_warns_about_losses(tmp_path, stereo_file, checkpoint, capsys):
    stream = tmp_path / "s.lmc"
    assert main(["encode", str(stereo_file), str(stream), "--model", checkpoint]) == 0
    data = stream.read_bytes()
    stream.write_bytes(data[: len(data) - 9])
    capsys.readouterr()
    out = tmp_path / "out.wav"
    assert main(["decode", str(stream), str(out), "--model", checkpoint, "--partial"]) == 0
    assert "lost" in capsys.readouterr().err and out.exists()


def test_version():
    with pytest.raises(SystemExit) as exit_info:
        main(["--version"])
    assert exit_info.value.code == 0


def test_version_is_printed(capsys):
    with pytest.raises(SystemExit):
        main(["--version"])
    assert capsys.readouterr().out.strip() == f"lmcodec {lmcodec.__version__}"


def test_outputs_get_the_mode_the_umask_gives(tmp_path, stereo_file, checkpoint, capsys):
    import os
    import stat

    previous = os.umask(0o022)
    try:
        stream, decoded = tmp_path / "s.lmc", tmp_path / "d.wav"
        assert main(["encode", str(stereo_file), str(stream), "--model", checkpoint]) == 0
        assert main(["decode", str(stream), str(decoded), "--model", checkpoint]) == 0
        os.umask(0o027)
        private = tmp_path / "p.wav"
        assert main(["decode", str(stream), str(private), "--model", checkpoint]) == 0
    finally:
        os.umask(previous)
    assert stat.S_IMODE(stream.stat().st_mode) == 0o644 and stat.S_IMODE(decoded.stat().st_mode) == 0o644
    assert stat.S_IMODE(private.stat().st_mode) == 0o640


def test_progress_bar_ends_at_its_total_without_warnings(capsys):
    import warnings

    from lmcodec.console import Progress

    with warnings.catch_warnings():
        warnings.simplefilter("error")  # tqdm's "clamping frac to range [0, 1]" would raise here
        with Progress(7.3, "decoding") as bar:
            for _ in range(8):
                bar.advance(1.0)  # one second per step overshoots the 7.3 s total on the last step
        assert bar._bar.n == pytest.approx(7.3)
    assert "100%" in capsys.readouterr().err
