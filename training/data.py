"""Training data for the codec: any `datasets` source with an audio column → random fixed-length 16 kHz crops.

Sources (see `load_audio_dataset`): local Parquet shards (e.g. from `prepare_librilight.py`), any dataset on the Hub
or on disk that `datasets.load_dataset` reads (also with `streaming=True`), an ``audiofolder``, or plain folders of
audio files. The audio column is always cast to `Audio(decode=False)`, so `datasets` hands over the raw
`{"bytes", "path"}` struct and never needs torchcodec/FFmpeg: decoding is done here with soundfile, resampling to
16 kHz with soxr, and channels are mixed to mono.

Reproducibility: every random choice for an example (crop position, augmentation) is drawn from a generator seeded
with `(seed, epoch, example index)`, and the batch order is a seeded permutation per epoch, so a batch depends only on
`(seed, epoch, batch number)`. That makes resuming a run at any batch exact, with or without DataLoader workers.

Distributed training: a global batch of `batch_size * world_size` consecutive items of the epoch's permutation is cut
in rank order, so rank r's batch is slice r of what a single process with `batch_size * world_size` would get.
Streaming datasets are split with `datasets.distributed.split_dataset_by_node`.
"""

from __future__ import annotations

import copy
import glob
import io
import logging
import math
import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soundfile as sf
import soxr
import torch

logger = logging.getLogger(__name__)

from lmcodec.frames import SAMPLING_RATE

AUDIO_EXTENSIONS = (".flac", ".wav", ".ogg", ".mp3", ".aiff", ".aif", ".opus")
# The training folders of the base speech collection (data/speech, training/data_sources.md); librispeech-test-other
# is held out for evaluation.
SPEECH_TRAINING_FOLDERS = ("librispeech-train-clean-100", "ljspeech", "cmu-arctic", "misc")
SPEECH_HELD_OUT_FOLDER = "librispeech-test-other"


# ---------------------------------------------------------------------------------------------------- sources
def folder_dataset(folders: str | os.PathLike | Sequence[str | os.PathLike], extensions=AUDIO_EXTENSIONS,
                   recursive: bool = True, with_duration: bool = True):
    """A `datasets.Dataset` of the audio files in one or more plain folders (sorted, recursive by default).

    Columns: `audio` (`Audio(decode=False)`: `{"bytes": None, "path": absolute path}`), `path`, and `duration` in
    seconds (read from the file headers, so short files can be filtered without decoding) when `with_duration`.
    Files soundfile cannot read are skipped with a warning.
    """
    import datasets

    if isinstance(folders, (str, os.PathLike)):
        folders = [folders]
    paths = []
    for folder in folders:
        folder = Path(folder)
        if not folder.is_dir():
            raise FileNotFoundError(f"audio folder not found: {folder} (pass an existing folder of audio files).")
        pattern = "**/*" if recursive else "*"
        paths.extend(p for p in folder.glob(pattern) if p.is_file() and p.suffix.lower() in extensions)
    paths = sorted({str(p.resolve()) for p in paths})
    durations = []
    if with_duration:
        readable = []
        for path in paths:
            try:
                info = sf.info(path)
            except Exception as error:  # noqa: BLE001 - any unreadable file is skipped, not fatal
                logger.warning("skipping %s: soundfile cannot read it (%s)", path, str(error).splitlines()[0])
                continue
            readable.append(path)
            durations.append(info.frames / info.samplerate)
        paths = readable
    if not paths:
        raise ValueError(f"no audio files ({', '.join(extensions)}) found in {', '.join(map(str, folders))}.")
    columns = {"audio": [{"bytes": None, "path": p} for p in paths], "path": paths}
    if with_duration:
        columns["duration"] = durations
    # Built without features, then cast: `Dataset.from_dict(..., features=Audio())` would call Audio.encode_example,
    # which imports torchcodec in datasets >= 4 even for plain paths.
    return datasets.Dataset.from_dict(columns).cast_column("audio", datasets.Audio(decode=False))


def speech_training_dataset(speech_dir: str | os.PathLike, folders: Sequence[str] = SPEECH_TRAINING_FOLDERS):
    """`folder_dataset` over the training folders of the shared speech collection (never the held-out one)."""
    if SPEECH_HELD_OUT_FOLDER in folders:
        raise ValueError(f"{SPEECH_HELD_OUT_FOLDER} is held out for evaluation; do not train on it.")
    existing = [Path(speech_dir) / name for name in folders if (Path(speech_dir) / name).is_dir()]
    if not existing:
        raise FileNotFoundError(f"none of {', '.join(folders)} exists under {speech_dir}.")
    return folder_dataset(existing)


def load_audio_dataset(source, split: str = "train", name: str | None = None, streaming: bool = False,
                       audio_column: str = "audio", **load_kwargs):
    """Open a training source as a `datasets` dataset whose `audio_column` is `Audio(decode=False)`.

    `source` may be:
      - a `datasets.Dataset` / `IterableDataset` (used as is);
      - one or more folders, comma-separated: Parquet shards inside (recursively) are loaded with the `parquet`
        builder, otherwise the folders' audio files are listed (`folder_dataset`); a missing folder is named in a
        `FileNotFoundError`;
      - `audiofolder:DIR` (or `source="audiofolder"` with `data_dir=DIR`): the audio files of DIR — listed here
        because datasets' own audiofolder builder needs torchcodec to build its cache;
      - a Parquet file or glob (`shards/*.parquet`);
      - anything else is passed to `datasets.load_dataset` (a Hub id such as `user/dataset`, or a builder name).
    `streaming=True` returns an `IterableDataset` (folders of audio files are converted with `to_iterable_dataset`).
    """
    import datasets

    if isinstance(source, (datasets.Dataset, datasets.IterableDataset)):
        dataset = source
    else:
        source = str(source)
        if source == "audiofolder" or source.startswith("audiofolder:"):
            folder = source.partition(":")[2] or load_kwargs.pop("data_dir", None)
            if not folder:
                raise ValueError("audiofolder needs a folder: pass 'audiofolder:DIR' or data_dir=DIR.")
            dataset = folder_dataset(folder)
        elif "," in source or Path(source).is_dir():
            # A comma-separated source is always a list of folders (no Hub id or builder name holds a comma), so a
            # missing one is named on its own instead of the whole list reaching `datasets` as one path.
            folders = [part.strip() for part in source.split(",") if part.strip()]
            missing = [folder for folder in folders if not Path(folder).is_dir()]
            if missing:
                raise FileNotFoundError(
                    f"audio folder{'s' if len(missing) > 1 else ''} not found: {', '.join(missing)} "
                    f"({len(missing)} of the {len(folders)} comma-separated folders; check the path"
                    f"{'s' if len(missing) > 1 else ''} or the data root they are relative to).")
            shards = sorted(str(p) for folder in folders for p in Path(folder).rglob("*.parquet"))
            if shards:
                dataset = _load_parquet(shards, split, streaming, **load_kwargs)
            else:
                dataset = folder_dataset(folders)
        elif source.endswith(".parquet") or "*" in source:
            files = sorted(glob.glob(source))
            if not files:
                raise FileNotFoundError(f"no files match {source}.")
            dataset = _load_parquet(files, split, streaming, **load_kwargs)
        else:
            dataset = datasets.load_dataset(source, name, split=split, streaming=streaming, **load_kwargs)
    if dataset.column_names is not None and audio_column not in dataset.column_names:
        raise ValueError(f"the dataset has no '{audio_column}' column (columns: {dataset.column_names}); "
                         "pass the name of its audio column.")
    dataset = dataset.cast_column(audio_column, datasets.Audio(decode=False))
    if streaming and isinstance(dataset, datasets.Dataset):
        dataset = dataset.to_iterable_dataset(num_shards=max(1, min(64, len(dataset))))
    return dataset


def _load_parquet(files: list[str], split: str, streaming: bool, **load_kwargs):
    """Parquet files → one split. Files named `{split}-XXXXX-of-YYYYY.parquet` of other splits are left out."""
    import datasets

    prefixed = [f for f in files if Path(f).name.startswith(f"{split}-")]
    selected = prefixed or files
    return datasets.load_dataset("parquet", data_files={split: selected}, split=split, streaming=streaming,
                                 **load_kwargs)


# ---------------------------------------------------------------------------------------------------- decoding
def _open_audio(value: dict) -> sf.SoundFile:
    """A soundfile handle on an `Audio(decode=False)` value: embedded bytes first, else the path (local or fsspec)."""
    data = value.get("bytes") if isinstance(value, dict) else None
    path = value.get("path") if isinstance(value, dict) else value
    if data:
        return sf.SoundFile(io.BytesIO(data))
    if path and os.path.exists(path):
        return sf.SoundFile(path)
    if path:
        import fsspec

        with fsspec.open(path, "rb") as handle:
            return sf.SoundFile(io.BytesIO(handle.read()))
    raise ValueError("audio value has neither bytes nor a path.")


def audio_info(value: dict) -> tuple[int, int]:
    """(frames, sampling rate) of an `Audio(decode=False)` value, from the header only."""
    with _open_audio(value) as handle:
        return handle.frames, handle.samplerate


def to_mono_16k(audio: np.ndarray, sampling_rate: int, target_rate: int = SAMPLING_RATE) -> np.ndarray:
    """soundfile `[T, C]` (or `[T]`) float audio → mono float32 `[T']` at `target_rate` (soxr, high quality)."""
    audio = np.asarray(audio, dtype=np.float32)
    if audio.ndim == 2:
        audio = audio.mean(axis=1)
    if sampling_rate != target_rate:
        audio = soxr.resample(audio, sampling_rate, target_rate, quality="HQ").astype(np.float32, copy=False)
    return np.ascontiguousarray(audio, dtype=np.float32)


def decode_audio(value: dict, target_rate: int = SAMPLING_RATE, start_seconds: float = 0.0,
                 max_seconds: float | None = None) -> np.ndarray:
    """Decode (a region of) an `Audio(decode=False)` value with soundfile → mono float32 at `target_rate`."""
    with _open_audio(value) as handle:
        rate = handle.samplerate
        start = min(int(round(start_seconds * rate)), handle.frames)
        frames = handle.frames - start if max_seconds is None else min(int(round(max_seconds * rate)),
                                                                       handle.frames - start)
        handle.seek(start)
        audio = handle.read(frames, dtype="float32", always_2d=True)
    return to_mono_16k(audio, rate, target_rate)


# ---------------------------------------------------------------------------------------------------- augmentation
@dataclass
class AugmentationConfig:
    """Cheap CPU augmentations of a crop (the codec's target is the augmented crop itself).

    gain: the crop is scaled to a random RMS level in [`rms_db_min`, `rms_db_max`] dBFS (peak limited to
    `max_peak`); speed: resampling by a factor in [`speed_min`, `speed_max`] (pitch and tempo change together);
    eq: a random smooth spectral tilt/bump of up to `eq_db` dB; noise: white or pink noise at an SNR in
    [`noise_snr_min`, `noise_snr_max`] dB; polarity: sign flip. Each applies with its probability.
    """

    gain_prob: float = 1.0
    rms_db_min: float = -35.0
    rms_db_max: float = -15.0
    max_peak: float = 0.99
    polarity_prob: float = 0.5
    speed_prob: float = 0.0
    speed_min: float = 0.9
    speed_max: float = 1.1
    eq_prob: float = 0.0
    eq_db: float = 6.0
    noise_prob: float = 0.0
    noise_snr_min: float = 15.0
    noise_snr_max: float = 40.0


NO_AUGMENTATION = AugmentationConfig(gain_prob=0.0, polarity_prob=0.0)


def _random_eq(audio: np.ndarray, rng: np.random.Generator, max_db: float) -> np.ndarray:
    """Multiply the spectrum by a smooth random curve: a tilt plus one bell, within ±max_db dB."""
    spectrum = np.fft.rfft(audio)
    position = np.linspace(0.0, 1.0, spectrum.shape[0])
    tilt = rng.uniform(-1, 1) * max_db * (position - 0.5)
    centre, width = rng.uniform(0.02, 0.6), rng.uniform(0.03, 0.2)
    bell = rng.uniform(-1, 1) * max_db * np.exp(-0.5 * ((position - centre) / width) ** 2)
    curve = 10.0 ** (np.clip(tilt + bell, -max_db, max_db) / 20.0)
    return np.fft.irfft(spectrum * curve, n=audio.shape[0]).astype(np.float32)


def _noise(length: int, rng: np.random.Generator, pink: bool) -> np.ndarray:
    white = rng.standard_normal(length)
    if not pink:
        return white
    spectrum = np.fft.rfft(white)
    spectrum /= np.sqrt(np.maximum(np.arange(spectrum.shape[0]), 1.0))
    return np.fft.irfft(spectrum, n=length)


def augment(crop: np.ndarray, rng: np.random.Generator, config: AugmentationConfig) -> np.ndarray:
    """Apply the level-independent augmentations (eq, noise, polarity) and then the gain to a mono crop."""
    audio = crop.astype(np.float64)
    if config.eq_prob > 0 and rng.random() < config.eq_prob:
        audio = _random_eq(audio, rng, config.eq_db)
    if config.noise_prob > 0 and rng.random() < config.noise_prob:
        signal_power = float(np.mean(audio**2))
        if signal_power > 0:
            noise = _noise(audio.shape[0], rng, pink=bool(rng.random() < 0.5))
            snr = rng.uniform(config.noise_snr_min, config.noise_snr_max)
            audio = audio + noise * math.sqrt(signal_power / (np.mean(noise**2) + 1e-12) / 10 ** (snr / 10))
    if config.polarity_prob > 0 and rng.random() < config.polarity_prob:
        audio = -audio
    if config.gain_prob > 0 and rng.random() < config.gain_prob:
        rms = math.sqrt(float(np.mean(audio**2)))
        if rms > 1e-5:
            audio = audio * (10 ** (rng.uniform(config.rms_db_min, config.rms_db_max) / 20) / rms)
    peak = float(np.max(np.abs(audio))) if audio.size else 0.0
    if peak > config.max_peak:
        audio = audio * (config.max_peak / peak)
    return audio.astype(np.float32)


def random_crop(value: dict, crop_samples: int, rng: np.random.Generator,
                augmentation: AugmentationConfig | None = None) -> tuple[np.ndarray, int]:
    """A random `crop_samples`-long 16 kHz mono crop of an audio value → (crop, number of real samples).

    Only the region needed is decoded (soundfile seeks inside FLAC/WAV), with a small margin for the resampler.
    Clips shorter than the crop are zero-padded at the end; the second value tells how many samples are real.
    Speed perturbation reads `speed` times more source audio and resamples it to the crop length.
    """
    augmentation = augmentation or NO_AUGMENTATION
    speed = 1.0
    if augmentation.speed_prob > 0 and rng.random() < augmentation.speed_prob:
        speed = float(rng.uniform(augmentation.speed_min, augmentation.speed_max))
    with _open_audio(value) as handle:
        rate, total = handle.samplerate, handle.frames
        if speed > 1.0:  # never let speeding up turn a clip that fills the crop into a padded one
            speed = max(1.0, min(speed, total * SAMPLING_RATE / (rate * crop_samples)))
        needed = int(math.ceil(crop_samples * speed * rate / SAMPLING_RATE))
        margin = 0 if (rate == SAMPLING_RATE and speed == 1.0) else 64
        start = int(rng.integers(0, max(total - needed, 0) + 1))
        read_start = max(start - margin, 0)
        handle.seek(read_start)
        audio = handle.read(min(needed + margin + (start - read_start), total - read_start), dtype="float32",
                            always_2d=True)
    mono = audio.mean(axis=1).astype(np.float32) if audio.shape[1] > 1 else audio[:, 0]
    effective_rate = rate / speed
    if effective_rate != SAMPLING_RATE:
        mono = soxr.resample(mono, effective_rate, SAMPLING_RATE, quality="HQ").astype(np.float32, copy=False)
        skip = int(round((start - read_start) * SAMPLING_RATE / effective_rate))
    else:
        skip = start - read_start
    crop = mono[skip : skip + crop_samples]
    real = crop.shape[0]
    if real < crop_samples:
        crop = np.pad(crop, (0, crop_samples - real))
    crop = augment(crop, rng, augmentation)
    crop[real:] = 0.0
    return crop, real


def example_rng(seed: int, epoch: int, index: int, rank: int = 0) -> np.random.Generator:
    """The generator of all random choices for one example: a pure function of (seed, epoch, index, rank)."""
    return np.random.default_rng(np.random.SeedSequence([seed, epoch, index, rank]))


def crop_samples_for(seconds: float, hop_length: int, sampling_rate: int = SAMPLING_RATE) -> int:
    """`seconds` of audio rounded to a whole number of code frames of `hop_length` samples (at least one)."""
    return max(1, int(round(seconds * sampling_rate / hop_length))) * hop_length


def collate(examples: list[dict]) -> dict[str, torch.Tensor]:
    """Stack `{"input_values": [1, T], "padding_mask": [T]}` examples into a batch."""
    return {key: torch.stack([example[key] for example in examples]) for key in examples[0]}


def _example(crop: np.ndarray, real: int) -> dict[str, torch.Tensor]:
    mask = torch.zeros(crop.shape[0], dtype=torch.long)
    mask[:real] = 1
    return {"input_values": torch.from_numpy(crop).unsqueeze(0), "padding_mask": mask}


# ---------------------------------------------------------------------------------------------------- map-style
class CodecCropDataset(torch.utils.data.Dataset):
    """Random fixed-length crops of a map-style `datasets.Dataset`; indexed by `(epoch, index)` pairs.

    The pair (rather than a bare index) makes every crop a pure function of the seed, the epoch and the index, so
    batches are the same whatever the number of DataLoader workers and after resuming.
    """

    def __init__(self, dataset, crop_samples: int, seed: int = 0, audio_column: str = "audio",
                 augmentation: AugmentationConfig | None = None):
        self.dataset = dataset.select_columns([audio_column])
        self.crop_samples = crop_samples
        self.seed = seed
        self.audio_column = audio_column
        self.augmentation = augmentation

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, key) -> dict[str, torch.Tensor]:
        epoch, index = key if isinstance(key, tuple) else (0, key)
        value = self.dataset[int(index)][self.audio_column]
        crop, real = random_crop(value, self.crop_samples, example_rng(self.seed, epoch, int(index)), self.augmentation)
        return _example(crop, real)


class ShardedBatchSampler(torch.utils.data.Sampler):
    """Batches of `(epoch, index)` pairs: a seeded permutation per epoch, cut into global batches of
    `batch_size * world_size` items, of which rank r takes slice r. Incomplete global batches are dropped, so every
    rank has the same number of batches. `set_epoch(epoch, start_batch)` selects the epoch and where to resume."""

    def __init__(self, num_items: int, batch_size: int, rank: int = 0, world_size: int = 1, seed: int = 0,
                 shuffle: bool = True):
        if num_items < batch_size * world_size:
            raise ValueError(f"the dataset has {num_items} items, fewer than one global batch "
                             f"({batch_size} x {world_size} processes); lower the batch size.")
        self.num_items, self.batch_size, self.rank, self.world_size = num_items, batch_size, rank, world_size
        self.seed, self.shuffle = seed, shuffle
        self.epoch, self.start_batch = 0, 0

    def set_epoch(self, epoch: int, start_batch: int = 0) -> None:
        self.epoch, self.start_batch = epoch, start_batch

    def __len__(self) -> int:
        return self.num_items // (self.batch_size * self.world_size) - self.start_batch

    def epoch_order(self, epoch: int) -> np.ndarray:
        if not self.shuffle:
            return np.arange(self.num_items)
        return np.random.default_rng(np.random.SeedSequence([self.seed, epoch, 0x5A3D])).permutation(self.num_items)

    def __iter__(self) -> Iterator[list[tuple[int, int]]]:
        order = self.epoch_order(self.epoch)
        global_batch = self.batch_size * self.world_size
        for batch in range(self.start_batch, self.num_items // global_batch):
            begin = batch * global_batch + self.rank * self.batch_size
            yield [(self.epoch, int(i)) for i in order[begin : begin + self.batch_size]]


# ---------------------------------------------------------------------------------------------------- streaming
class StreamingCropDataset(torch.utils.data.IterableDataset):
    """Batches of random crops from a streaming `datasets.IterableDataset`, split across processes and workers.

    The stream is shuffled (shard order and a buffer of `shuffle_buffer_size` examples, reseeded each epoch by
    `set_epoch`) and split with `split_dataset_by_node` into `world_size * num_workers` parts: DataLoader worker w of
    rank r reads part `r * num_workers + role`, its *role* (by shards when there are at least as many shards as
    parts — make the shard count a multiple of it — else by examples). Example k of a part's epoch stream is cropped
    with `example_rng(seed, epoch, k, part)`; short examples are padded, never skipped. Each batch carries its role
    (`"data_role"`), so the trainer knows how many batches of each part it consumed (`advance_position`); resuming
    skips exactly those undecoded examples and rotates the roles so the DataLoader's round-robin over workers
    continues where it stopped: the resumed batches are the uninterrupted run's.
    """

    def __init__(self, dataset, crop_samples: int, batch_size: int, rank: int = 0, world_size: int = 1,
                 seed: int = 0, shuffle_buffer_size: int = 1000, audio_column: str = "audio",
                 augmentation: AugmentationConfig | None = None, num_workers: int = 0):
        if shuffle_buffer_size > 0:
            dataset = dataset.shuffle(seed=seed, buffer_size=shuffle_buffer_size)
        self.source = dataset
        self.crop_samples, self.batch_size, self.rank, self.world_size = crop_samples, batch_size, rank, world_size
        self.seed, self.audio_column, self.augmentation = seed, audio_column, augmentation
        self.num_roles = max(1, num_workers)
        self.epoch, self.position = 0, initial_position(self)

    def set_epoch(self, epoch: int, position: dict | None = None) -> None:
        self.epoch = epoch
        self.position = copy.deepcopy(position) if position else initial_position(self)

    def _part(self, role: int):
        from datasets.distributed import split_dataset_by_node

        parts = self.world_size * self.num_roles
        if parts == 1:
            return self.source, 0
        part = self.rank * self.num_roles + role
        shards = getattr(self.source, "num_shards", None) or getattr(self.source, "n_shards", 1)
        strategy = "shards" if shards >= parts else "examples"
        return split_dataset_by_node(self.source, rank=part, world_size=parts, strategy=strategy), part

    def __iter__(self) -> Iterator[dict[str, torch.Tensor]]:
        info = torch.utils.data.get_worker_info()
        workers = info.num_workers if info is not None else 1
        if workers != self.num_roles:
            raise RuntimeError(f"StreamingCropDataset was built for {self.num_roles} worker(s), got {workers}.")
        role = ((info.id if info is not None else 0) + self.position["next_role"]) % self.num_roles
        dataset, part = self._part(role)
        dataset.set_epoch(self.epoch)
        skip = self.position["consumed"][role] * self.batch_size
        batch = []
        # `.iter()` rather than `for row in dataset`: inside a DataLoader worker the latter would split the shards
        # among the workers again, on top of the split made here.
        for index, rows in enumerate(dataset.iter(batch_size=1)):
            if index < skip:
                continue
            rng = example_rng(self.seed, self.epoch, index, part)
            batch.append(_example(*random_crop(rows[self.audio_column][0], self.crop_samples, rng, self.augmentation)))
            if len(batch) == self.batch_size:
                yield dict(collate(batch), data_role=torch.tensor(role))
                batch = []


def build_dataloader(dataset, crop_samples: int, batch_size: int, rank: int = 0, world_size: int = 1,
                     seed: int = 0, num_workers: int = 0, audio_column: str = "audio",
                     augmentation: AugmentationConfig | None = None, shuffle_buffer_size: int = 1000):
    """A `torch.utils.data.DataLoader` of `{"input_values": [B, 1, crop], "padding_mask": [B, crop]}` batches.

    Map-style datasets get a `ShardedBatchSampler`; streaming ones a `StreamingCropDataset` (whose batches also hold
    `"data_role"`, see `advance_position`). Before iterating an epoch call `set_data_epoch(loader, epoch, position)`.
    """
    import datasets

    generator = torch.Generator().manual_seed(seed)  # keeps DataLoader iterators off the global torch RNG
    if isinstance(dataset, datasets.IterableDataset):
        stream = StreamingCropDataset(dataset, crop_samples, batch_size, rank, world_size, seed, shuffle_buffer_size,
                                      audio_column, augmentation, num_workers)
        return torch.utils.data.DataLoader(stream, batch_size=None, num_workers=num_workers, generator=generator)
    crops = CodecCropDataset(dataset, crop_samples, seed, audio_column, augmentation)
    sampler = ShardedBatchSampler(len(dataset), batch_size, rank, world_size, seed)
    return torch.utils.data.DataLoader(crops, batch_sampler=sampler, num_workers=num_workers, collate_fn=collate,
                                       generator=generator, persistent_workers=False)


def initial_position(loader_or_dataset) -> dict:
    """The data position at the start of an epoch: `{"batches": 0}` (+ per-role counts for streaming data)."""
    dataset = getattr(loader_or_dataset, "dataset", loader_or_dataset)
    if isinstance(dataset, StreamingCropDataset):
        return {"batches": 0, "consumed": [0] * dataset.num_roles, "next_role": 0}
    return {"batches": 0}


def advance_position(position: dict, batch: dict) -> dict:
    """Count one consumed batch in `position` (JSON-serialisable; save it to resume). Removes `"data_role"`."""
    position["batches"] += 1
    role = batch.pop("data_role", None)
    if role is not None:
        role = int(role)
        position["consumed"][role] += 1
        position["next_role"] = (role + 1) % len(position["consumed"])
    return position


def set_data_epoch(loader, epoch: int, position: dict | int | None = None) -> None:
    """Select the epoch (reshuffles) and where in it to start (a position from `advance_position`, or a number of
    batches for map-style data) of a `build_dataloader` loader."""
    if isinstance(loader.batch_sampler, ShardedBatchSampler):
        start = position["batches"] if isinstance(position, dict) else int(position or 0)
        loader.batch_sampler.set_epoch(epoch, start)
    else:
        if isinstance(position, int):
            if position and loader.dataset.num_roles > 1:
                raise ValueError("a streaming loader with workers resumes from a position dict, not a batch count.")
            position = {"batches": position, "consumed": [position], "next_role": 0}
        loader.dataset.set_epoch(epoch, position)


def filter_min_duration(dataset, min_seconds: float, duration_column: str = "duration"):
    """Drop items shorter than `min_seconds` when the dataset has a duration column (map-style or streaming)."""
    columns = dataset.column_names or []
    if min_seconds <= 0 or duration_column not in columns:
        return dataset
    return dataset.filter(lambda duration: duration is None or duration >= min_seconds,
                          input_columns=[duration_column])


def exclude_paths(dataset, patterns: Sequence[str] = (), paths: Sequence[str] = (), path_column: str = "path"):
    """Drop the items whose file path matches one of the glob `patterns` (`fnmatch` on the absolute path, e.g.
    ``*/speechocean762/SPEAKER0056/*``) or is one of `paths` (compared after resolving). Needs a path column
    (folder datasets have one); map-style or streaming. Used to hold a dev split of speakers out of training."""
    import fnmatch

    patterns = [p for p in patterns if p]
    resolved = {str(Path(p).resolve()) for p in paths}
    if not patterns and not resolved:
        return dataset
    columns = dataset.column_names or []
    if path_column not in columns:
        raise ValueError(f"excluding files needs a '{path_column}' column (folders of audio files have one); "
                         f"the dataset has {columns}.")

    def keep(path) -> bool:
        absolute = str(Path(path).resolve()) if path else ""
        return absolute not in resolved and not any(fnmatch.fnmatch(absolute, pattern) for pattern in patterns)

    return dataset.filter(keep, input_columns=[path_column])


def dataset_paths(dataset, path_column: str = "path") -> set[str]:
    """The resolved file paths of a map-style dataset with a path column (empty set otherwise)."""
    if not hasattr(dataset, "__len__") or path_column not in (dataset.column_names or []):
        return set()
    return {str(Path(p).resolve()) for p in dataset[path_column] if p}


def spread_indices(total: int, count: int) -> list[int]:
    """`count` indices evenly spread over `range(total)` (all of them when count >= total)."""
    if count >= total:
        return list(range(total))
    return sorted({int(round(i)) for i in np.linspace(0, total - 1, count)})


def spread_selection(dataset, count: int, path_column: str = "path") -> list[int]:
    """Indices of `count` items of a map-style dataset spread evenly over its folders (see `load_eval_items`)."""
    if path_column not in (dataset.column_names or []):
        return spread_indices(len(dataset), count)
    groups: dict[str, list[int]] = {}
    for index, path in enumerate(dataset[path_column]):
        groups.setdefault(str(Path(path).parent), []).append(index)
    ordered = [groups[key] for key in sorted(groups)]
    chosen = []
    for number, members in enumerate(ordered):
        share = count // len(ordered) + (1 if number < count % len(ordered) else 0)
        chosen.extend(members[i] for i in spread_indices(len(members), share) if share)
    return sorted(chosen)


def load_eval_items(dataset, max_items: int = 8, max_seconds: float | None = 10.0,
                    audio_column: str = "audio", spread: bool = False) -> list[np.ndarray]:
    """The first `max_items` items of a dataset as whole 16 kHz mono utterances (each cut to `max_seconds`).

    `spread=True` (map-style datasets) takes `max_items` items evenly spread over the dataset instead; with a path
    column, over its folders (one folder per speaker in a dev set): every folder gives `max_items // folders` items
    (the first folders one more), evenly spread inside it."""
    if spread and hasattr(dataset, "__len__"):
        return [decode_audio(dataset[i][audio_column], max_seconds=max_seconds)
                for i in spread_selection(dataset, max_items)]
    items = []
    for row in dataset:
        items.append(decode_audio(row[audio_column], max_seconds=max_seconds))
        if len(items) >= max_items:
            break
    return items


def split_holdout(dataset, num_items: int, seed: int = 0):
    """(train, held out) for a map-style dataset: `num_items` items chosen by a seeded permutation are held out."""
    if num_items <= 0:
        return dataset, None
    if num_items >= len(dataset):
        raise ValueError(f"cannot hold out {num_items} of {len(dataset)} items; lower eval_holdout.")
    order = np.random.default_rng(np.random.SeedSequence([seed, 0x0E7A1])).permutation(len(dataset))
    held = sorted(int(i) for i in order[:num_items])
    keep = sorted(int(i) for i in order[num_items:])
    return dataset.select(keep), dataset.select(held)


def train_and_held_out(data_args, seed: int = 0, **load_kwargs):
    """(training dataset, held-out dataset or None) as the data arguments ask; one definition for every trainer.

    Held out: `eval_dataset` when given (its files are dropped from training with `exclude_eval_from_train`, and the
    run fails if any remain), else `eval_holdout` items of the training data. `train_exclude` (glob patterns over
    paths) drops more training files; `max_train_items` keeps only the first N of the rest. `load_kwargs` go to
    `load_audio_dataset` (e.g. `cache_dir`).
    """
    dataset = load_audio_dataset(data_args.train_dataset, split=data_args.train_split,
                                 name=data_args.train_dataset_config, streaming=data_args.streaming,
                                 audio_column=data_args.audio_column, **load_kwargs)
    held_out = None
    if data_args.eval_holdout > 0 and not data_args.eval_dataset:
        if data_args.streaming:
            held_out, dataset = dataset.take(data_args.eval_holdout), dataset.skip(data_args.eval_holdout)
        else:
            dataset, held_out = split_holdout(dataset, data_args.eval_holdout, seed)
    elif data_args.eval_dataset:
        held_out = load_audio_dataset(data_args.eval_dataset, split=data_args.eval_split,
                                      audio_column=data_args.audio_column, **load_kwargs)
    patterns = [p.strip() for p in data_args.train_exclude.split(",") if p.strip()]
    eval_paths = dataset_paths(held_out) if (data_args.eval_dataset and held_out is not None) else set()
    if patterns or (eval_paths and data_args.exclude_eval_from_train):
        before = len(dataset) if hasattr(dataset, "__len__") else None
        dataset = exclude_paths(dataset, patterns, sorted(eval_paths) if data_args.exclude_eval_from_train else ())
        if before is not None:
            logger.info("training items: %d of %d after excluding %d pattern(s) and %d evaluation file(s)",
                        len(dataset), before, len(patterns), len(eval_paths))
    if eval_paths and data_args.exclude_eval_from_train:
        leaked = eval_paths & dataset_paths(dataset)
        if leaked:
            raise ValueError(f"{len(leaked)} evaluation files are also training files, e.g. {sorted(leaked)[0]}.")
    limit = data_args.max_train_items
    if limit > 0:
        dataset = dataset.take(limit) if data_args.streaming else dataset.select(range(min(limit, len(dataset))))
    return dataset, held_out


__all__ = [
    "AUDIO_EXTENSIONS",
    "AugmentationConfig",
    "CodecCropDataset",
    "NO_AUGMENTATION",
    "SPEECH_HELD_OUT_FOLDER",
    "SPEECH_TRAINING_FOLDERS",
    "ShardedBatchSampler",
    "StreamingCropDataset",
    "audio_info",
    "augment",
    "build_dataloader",
    "collate",
    "crop_samples_for",
    "decode_audio",
    "example_rng",
    "exclude_paths",
    "dataset_paths",
    "spread_indices",
    "spread_selection",
    "filter_min_duration",
    "folder_dataset",
    "load_audio_dataset",
    "load_eval_items",
    "random_crop",
    "set_data_epoch",
    "advance_position",
    "initial_position",
    "speech_training_dataset",
    "split_holdout",
    "to_mono_16k",
    "train_and_held_out",
]
