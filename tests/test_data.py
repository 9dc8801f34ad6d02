"""Training data pipeline: sources with an audio column → seeded 16 kHz mono crops, sharded across processes."""

from __future__ import annotations

import io
import json
import re
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch

from lmcodec.training import data
from tests.conftest import SPEECH_DIR, speech_like


def _flac_bytes(audio: np.ndarray, rate: int) -> bytes:
    buffer = io.BytesIO()
    sf.write(buffer, audio, rate, format="FLAC")
    return buffer.getvalue()


def generated_dataset(count: int = 8, seconds: float = 1.5):
    """An in-memory `datasets.Dataset` with an audio column of embedded FLAC bytes (various rates/channels)."""
    import datasets

    rows = []
    for index in range(count):
        rate = (16000, 22050, 8000)[index % 3]
        audio = speech_like(seconds, rate, seed=index) * (1 + 0.1 * index)
        if index % 4 == 1:
            audio = np.stack([audio, 0.5 * audio], axis=1)  # stereo
        rows.append({"bytes": _flac_bytes(audio, rate), "path": f"item{index}.flac"})
    table = {"audio": rows, "speaker_id": [str(i % 2) for i in range(count)]}
    return datasets.Dataset.from_dict(table).cast_column("audio", datasets.Audio(decode=False))


@pytest.fixture
def audio_folder(tmp_path: Path) -> Path:
    folder = tmp_path / "audio"
    (folder / "sub").mkdir(parents=True)
    sf.write(folder / "a.wav", speech_like(1.2, 16000, seed=1), 16000)
    sf.write(folder / "sub" / "b.flac", np.stack([speech_like(2.0, 44100, seed=2)] * 2, axis=1), 44100)
    sf.write(folder / "short.wav", speech_like(0.2, 16000, seed=3), 16000)
    (folder / "notes.txt").write_text("not audio")
    return folder


def test_crops_are_16k_mono_whole_frames_and_padded_when_short(audio_folder: Path):
    dataset = data.load_audio_dataset(str(audio_folder))
    assert len(dataset) == 3 and sorted(Path(p).name for p in dataset["path"]) == ["a.wav", "b.flac", "short.wav"]
    crops = data.CodecCropDataset(dataset, crop_samples=data.crop_samples_for(0.5, 320), seed=0)
    for index in range(len(dataset)):
        example = crops[(0, index)]
        assert example["input_values"].shape == (1, 8000) and example["input_values"].dtype == torch.float32
        real = int(example["padding_mask"].sum())
        name = Path(dataset[index]["path"]).name
        assert real == (3200 if name == "short.wav" else 8000)
        assert torch.all(example["input_values"][0, real:] == 0)
        assert example["input_values"].abs().max() <= 0.99 + 1e-6
    assert data.crop_samples_for(0.51, 320) % 320 == 0


def test_resampling_keeps_the_pitch():
    rate, tone = 22050, 1000.0
    t = np.arange(rate) / rate
    value = {"bytes": _flac_bytes(0.5 * np.sin(2 * np.pi * tone * t), rate), "path": None}
    crop, real = data.random_crop(value, 16000, np.random.default_rng(0))
    assert real == 16000
    spectrum = np.abs(np.fft.rfft(crop * np.hanning(crop.shape[0])))
    assert abs(np.argmax(spectrum) * 16000 / crop.shape[0] - tone) < 2.0
    whole = data.decode_audio(value)
    assert abs(whole.shape[0] - 16000) <= 1


def test_crops_are_a_pure_function_of_seed_epoch_and_index():
    dataset = generated_dataset()
    augmentation = data.AugmentationConfig(speed_prob=0.5, eq_prob=0.5, noise_prob=0.5)
    crops = data.CodecCropDataset(dataset, 4800, seed=3, augmentation=augmentation)
    same = data.CodecCropDataset(dataset, 4800, seed=3, augmentation=augmentation)
    for index in range(len(dataset)):
        assert torch.equal(crops[(1, index)]["input_values"], same[(1, index)]["input_values"])
    assert not torch.equal(crops[(1, 0)]["input_values"], crops[(2, 0)]["input_values"])
    levels = [20 * np.log10(crops[(e, 0)]["input_values"].pow(2).mean().sqrt().item()) for e in range(6)]
    assert all(-36 <= level <= -14 for level in levels), levels


def test_batches_shard_across_ranks_and_resume(tmp_path: Path):
    dataset = generated_dataset(10)
    single = data.build_dataloader(dataset, 3200, batch_size=4, seed=5)
    data.set_data_epoch(single, epoch=2)
    combined = list(single)
    assert len(combined) == 2  # 10 items // 4, incomplete batch dropped
    ranks = [data.build_dataloader(dataset, 3200, batch_size=2, rank=r, world_size=2, seed=5) for r in range(2)]
    for loader in ranks:
        data.set_data_epoch(loader, epoch=2)
    per_rank = [list(loader) for loader in ranks]
    for step, batch in enumerate(combined):
        joined = torch.cat([per_rank[0][step]["input_values"], per_rank[1][step]["input_values"]])
        assert torch.equal(joined, batch["input_values"]), "rank slices in rank order = the single-process batch"
    data.set_data_epoch(single, epoch=2, position=1)
    resumed = list(single)
    assert len(resumed) == 1 and torch.equal(resumed[0]["input_values"], combined[1]["input_values"])
    with_worker = data.build_dataloader(dataset, 3200, batch_size=4, seed=5, num_workers=1)
    data.set_data_epoch(with_worker, epoch=2)
    assert all(torch.equal(a["input_values"], b["input_values"]) for a, b in zip(with_worker, combined, strict=True))


def test_parquet_streaming_split_by_node_and_resume(tmp_path: Path, monkeypatch):
    import datasets

    # datasets' Parquet streaming sleeps 5 s whenever an iteration ends (a pyarrow thread-shutdown workaround).
    monkeypatch.setattr(datasets.config, "SLEEP_TIME_ON_THREADS_SHUTDOWN", 0)
    shards = tmp_path / "shards"
    shards.mkdir()
    dataset = generated_dataset(8)
    for shard in range(2):
        dataset.shard(2, shard, contiguous=True).to_parquet(str(shards / f"train-{shard:05d}-of-00002.parquet"))
    loaded = data.load_audio_dataset(str(shards), cache_dir=str(tmp_path / "cache"))
    assert len(loaded) == 8 and loaded.features["audio"].decode is False
    stream = data.load_audio_dataset(str(shards), streaming=True)
    seen = []
    for rank in range(2):
        loader = data.build_dataloader(stream, 1600, batch_size=2, rank=rank, world_size=2, seed=1,
                                       shuffle_buffer_size=4)
        data.set_data_epoch(loader, epoch=0)
        batches = list(loader)
        assert len(batches) == 2 and batches[0]["input_values"].shape == (2, 1, 1600)
        seen.extend(batches)
        data.set_data_epoch(loader, epoch=0, position=1)
        resumed = list(loader)
        assert len(resumed) == 1 and torch.equal(resumed[0]["input_values"], batches[1]["input_values"])
    crops = torch.cat([b["input_values"] for b in seen])
    assert len({tuple(c[0, :64].tolist()) for c in crops}) == 8, "the two ranks read disjoint examples"


def test_streaming_with_workers_resumes_at_any_batch(tmp_path: Path, monkeypatch):
    import datasets

    monkeypatch.setattr(datasets.config, "SLEEP_TIME_ON_THREADS_SHUTDOWN", 0)
    shards = tmp_path / "uneven"
    shards.mkdir()
    dataset = generated_dataset(12, seconds=0.5)
    bounds = [0, 6, 8, 10, 12]  # shards of 6, 2, 2 and 2 examples: one worker's part ends two batches early
    for shard in range(4):
        part = dataset.select(range(bounds[shard], bounds[shard + 1]))
        part.to_parquet(str(shards / f"train-{shard:05d}-of-00004.parquet"))
    stream = data.load_audio_dataset(str(shards), streaming=True)
    loader = data.build_dataloader(stream, 1600, batch_size=2, seed=2, num_workers=2, shuffle_buffer_size=3)

    def run(position):
        data.set_data_epoch(loader, epoch=1, position=position)
        batches, positions = [], []
        current = position or data.initial_position(loader)
        for batch in loader:
            data.advance_position(current, batch)
            batches.append(batch["input_values"])
            positions.append(json.loads(json.dumps(current)))
        return batches, positions

    batches, positions = run(None)
    assert len(batches) == 6 and positions[-1]["consumed"] in ([4, 2], [2, 4])
    for start in (1, 3, 5):
        resumed, _ = run(positions[start - 1])
        assert len(resumed) == len(batches) - start
        assert all(torch.equal(a, b) for a, b in zip(resumed, batches[start:], strict=True)), start


def test_audiofolder_and_in_memory_sources(audio_folder: Path):
    assert len(data.load_audio_dataset(f"audiofolder:{audio_folder}")) == 3
    assert len(data.load_audio_dataset("audiofolder", data_dir=str(audio_folder))) == 3
    in_memory = data.load_audio_dataset(generated_dataset(3))
    assert len(in_memory) == 3
    with pytest.raises(ValueError, match="no 'speech' column"):
        data.load_audio_dataset(generated_dataset(3), audio_column="speech")
    filtered = data.filter_min_duration(data.load_audio_dataset(str(audio_folder)), 0.5)
    assert len(filtered) == 2


def test_a_missing_folder_in_a_comma_separated_list_is_named_alone(audio_folder: Path, tmp_path: Path):
    missing = tmp_path / "no-such-corpus"
    with pytest.raises(FileNotFoundError) as raised:
        data.load_audio_dataset(f"{audio_folder},{missing}")
    message = str(raised.value)
    assert message.startswith(f"audio folder not found: {missing} (1 of the 2 comma-separated folders"), message
    assert f"{audio_folder}," not in message  # not the whole list joined into one path
    other = tmp_path / "another-missing"
    with pytest.raises(FileNotFoundError, match=re.escape(f"audio folders not found: {missing}, {other} (2 of the 3 ")):
        data.load_audio_dataset(f"{missing},{audio_folder},{other}")
    assert len(data.load_audio_dataset(f"{audio_folder},{audio_folder / 'sub'}")) == 3  # present folders still load


def test_shared_speech_training_folders_exclude_the_held_out_set():
    if not SPEECH_DIR.is_dir():
        pytest.skip(f"real speech folder {SPEECH_DIR} is absent (data/speech in the repository, or ../shared/data/speech)")
    with pytest.raises(ValueError, match="held out"):
        data.speech_training_dataset(SPEECH_DIR, folders=("ljspeech", data.SPEECH_HELD_OUT_FOLDER))
    dataset = data.speech_training_dataset(SPEECH_DIR, folders=("cmu-arctic",))
    assert len(dataset) > 0 and all(data.SPEECH_HELD_OUT_FOLDER not in p for p in dataset["path"])


def test_dev_split_excludes_files_from_training_and_spreads_eval_items(tmp_path: Path):
    """A dev split of speakers inside a training folder: `exclude_paths` by pattern or by file, `build_data` drops
    the eval_dataset's files from training (and refuses a leak), eval items come from every dev speaker."""
    from lmcodec.training.args import CodecTrainingArguments, DataArguments
    from lmcodec.training.train_codec import build_data

    root = tmp_path / "corpus"
    for number, speaker in enumerate(("S1", "S2", "S3")):
        (root / speaker).mkdir(parents=True)
        for utterance in range(3):
            sf.write(root / speaker / f"{speaker}-{utterance}.WAV", speech_like(0.6, 16000, seed=10 * number + utterance),
                     16000)
    dataset = data.load_audio_dataset(str(root))
    assert len(dataset) == 9  # upper-case extensions are audio too
    kept = data.exclude_paths(dataset, patterns=["*/S2/*"])
    assert len(kept) == 6 and not any("/S2/" in p for p in kept["path"])
    kept = data.exclude_paths(dataset, paths=[str(root / "S3" / "S3-0.WAV")])
    assert len(kept) == 8
    with pytest.raises(ValueError, match="needs a 'path' column"):
        data.exclude_paths(generated_dataset(2), patterns=["*"])
    assert data.spread_indices(10, 3) == [0, 4, 9] and data.spread_indices(2, 5) == [0, 1]

    dev = f"{root / 'S1'},{root / 'S3'}"
    data_args = DataArguments(train_dataset=str(root), eval_dataset=dev, max_eval_items=2, eval_spread=True,
                              max_eval_seconds=0.5)
    training_args = CodecTrainingArguments(per_device_batch_size=2)
    loader, eval_items = build_data(data_args, training_args, rank=0, world_size=1, hop_length=320)
    assert len(loader.dataset) == 3 and len(eval_items) == 2  # only S2 trains; one item of S1 and one of S3
    first, last = (data.decode_audio({"path": str(root / s / f"{s}-0.WAV")}, max_seconds=0.5) for s in ("S1", "S3"))
    assert np.array_equal(eval_items[0], first) and np.array_equal(eval_items[1], last)
    assert data.spread_selection(dataset, 4) == [0, 2, 3, 6]  # folders S1 (2 items), S2, S3 (one each)
    data_args.exclude_eval_from_train = False
    loader, _ = build_data(data_args, training_args, rank=0, world_size=1, hop_length=320)
    assert len(loader.dataset) == 9
