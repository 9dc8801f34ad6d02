"""Growing a checkpoint's decoder: the grown model decodes exactly as the original, and then trains."""

from __future__ import annotations

import pytest
import torch

import lmcodec
from lmcodec.errors import LMCodecError
from lmcodec.training.grow_decoder import grow_decoder, main

from .conftest import random_codebooks, speech_like, tiny_config


def test_grown_decoder_decodes_as_the_original_and_keeps_everything_else(tmp_path):
    torch.manual_seed(0)
    model = random_codebooks(lmcodec.LMCodecModel(tiny_config()).eval())  # with its integer entropy model
    lmcodec.save_checkpoint(grow_decoder(model, num_decoder_frame_layers=2, num_decoder_stft_layers=3),
                            tmp_path / "grown")
    grown = lmcodec.LMCodecModel.from_pretrained(tmp_path / "grown").eval()  # as training will load it
    assert (grown.config.num_decoder_frame_layers, grown.config.num_decoder_stft_layers) == (2, 3)
    assert len(grown.decoder.frame_layers.layers) == 2 and len(grown.decoder.stft_layers.layers) == 3
    for name, tensor in model.state_dict().items():  # every original weight copied, encoder and LMs included
        assert torch.equal(grown.state_dict()[name], tensor), name
    audio = torch.from_numpy(speech_like(0.5)).float()[None, None]  # [1, 1, T]
    with torch.no_grad():
        codes = model.encode(audio).audio_codes
        assert torch.equal(grown.encode(audio).audio_codes, codes)
        torch.testing.assert_close(grown.decode(codes).audio_values, model.decode(codes).audio_values)
    # the new blocks are live: their scale gets a gradient, so training moves them off the identity
    grown.train()
    loss = grown(audio).loss
    loss.backward()
    new_scale = grown.decoder.stft_layers.layers[2].layer_scale
    assert new_scale.grad is not None and new_scale.grad.abs().sum() > 0


def test_growing_refuses_to_shrink_and_needs_a_size(tmp_path, capsys):
    model = lmcodec.LMCodecModel(tiny_config(num_decoder_stft_layers=2)).eval()
    with pytest.raises(LMCodecError, match="fewer than the checkpoint's 2; growing only adds layers"):
        grow_decoder(model, num_decoder_stft_layers=1)
    lmcodec.save_checkpoint(model, tmp_path / "model")
    assert main([str(tmp_path / "model"), str(tmp_path / "grown")]) == 2
    assert "nothing to grow: pass --decoder-frame-layers" in capsys.readouterr().err
    assert main([str(tmp_path / "model"), str(tmp_path / "grown"), "--decoder-stft-layers", "2"]) == 2
    assert "nothing to grow: the decoder already has 1 + 2 blocks" in capsys.readouterr().err
    assert not (tmp_path / "grown").exists()
    assert main([str(tmp_path / "model"), str(tmp_path / "grown"), "--decoder-stft-layers", "4"]) == 0
    assert lmcodec.LMCodecModel.from_pretrained(tmp_path / "grown").config.num_decoder_stft_layers == 4
    # never over an existing folder (the source included)
    assert main([str(tmp_path / "model"), str(tmp_path / "model"), "--decoder-stft-layers", "4"]) == 2
    assert "already exists; pass a new folder" in capsys.readouterr().err
    assert lmcodec.LMCodecModel.from_pretrained(tmp_path / "model").config.num_decoder_stft_layers == 2
