"""The `lmcodec` command line, called in-process: one-line errors and exit code 2 on bad input."""

from __future__ import annotations

import numpy as np
import soundfile as sf

from lmcodec.cli import main
from tests.conftest import speech_like


def test_demo_on_a_generated_file(tmp_path, capsys):
    source = tmp_path / "in.wav"
    sf.write(source, np.stack([speech_like(1.1)] * 2, axis=1), 22050)
    output = tmp_path / "out.wav"
    assert main(["demo", str(source), "--output", str(output), "--coarse", "2"]) == 0
    printed = capsys.readouterr().out
    assert "1.00 kbps" in printed and "2 coarse levels" in printed
    assert sf.info(output).samplerate == 16000


def test_bad_input_is_one_line_and_exit_code_2(tmp_path, capsys):
    assert main(["demo", str(tmp_path / "missing.wav"), "--output", str(tmp_path / "o.wav")]) == 2
    error = capsys.readouterr().err
    assert error.count("\n") == 1 and "input file not found" in error
    assert not (tmp_path / "o.wav").exists()
