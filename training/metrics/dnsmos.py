"""DNSMOS P.835 (non-intrusive SIG / BAK / OVRL quality scores) of speech, as an `evaluate` metric."""

import importlib.util
import os

import datasets
import evaluate
import numpy as np

from .alignment import SAMPLING_RATE
from .alignment import as_signal
from .alignment import check_sampling_rate

# DNSMOS scores 9.01 s windows with a hop of 1 s; shorter audio is repeated until it fills one window
# (as Microsoft's dnsmos_local.py and the speechmos package do).
INPUT_LENGTH = 9.01
HOP_SECONDS = 1.0
MODEL_FILE = ("dnsmos_models", "sig_bak_ovr.onnx")
# Third-order fits of the raw network outputs to P.835 MOS (non-personalized model), from dnsmos_local.py.
SIG_FIT = np.poly1d([-0.08397278, 1.22083953, 0.0052439])
BAK_FIT = np.poly1d([-0.13166888, 1.60915514, -0.39604546])
OVRL_FIT = np.poly1d([-0.06766283, 1.11546468, 0.04602535])

_CITATION = """\
@inproceedings{reddy2022dnsmosp835,
  title     = {{DNSMOS P.835}: A Non-Intrusive Perceptual Objective Speech Quality Metric to Evaluate Noise
               Suppressors},
  author    = {Reddy, Chandan K. A. and Gopal, Vishak and Cutler, Ross},
  booktitle = {IEEE International Conference on Acoustics, Speech and Signal Processing (ICASSP)},
  pages     = {886--890},
  year      = {2022}
}
"""

_DESCRIPTION = """\
DNSMOS P.835 is a non-intrusive (reference-free) neural estimate of the three ITU-T P.835 listening-test scores,
each a MOS from 1 (bad) to 5 (excellent), higher is better:
SIG (quality of the speech signal itself), BAK (how unobtrusive the background / noise is) and OVRL (overall).
It runs Microsoft's DNSMOS P.835 ONNX model (`sig_bak_ovr.onnx`, shipped in the `speechmos` package) with
`onnxruntime`, offline: the audio (16 kHz, clipped to [-1, 1]) is cut into 9.01 s windows with a 1 s hop (audio
shorter than 9.01 s is repeated to fill one window), each window is scored, the raw outputs are mapped to MOS with
the published polynomial fits of the non-personalized model, and the windows are averaged. This follows
`dnsmos_local.py` of the DNS Challenge and `speechmos.dnsmos.run(..., model_type="dnsmos")`, without the P.808
score (which needs librosa), so `librosa` is not required.
"""

_KWARGS_DESCRIPTION = """
Computes DNSMOS P.835 SIG, BAK and OVRL of each prediction (no reference needed).
Args:
    predictions (`list` of 1-D float arrays): speech to rate, 16 kHz, nominally in [-1, 1] (clipped to it).
    sampling_rate (`int`, defaults to 16000): must be 16000.
Returns:
    sig (`float`): mean SIG MOS over the items (1 to 5).
    bak (`float`): mean BAK MOS over the items (1 to 5).
    ovrl (`float`): mean OVRL MOS over the items (1 to 5).
    sig_per_item, bak_per_item, ovrl_per_item (`list` of `float`): the scores of each item, in input order.
Examples:
    >>> import evaluate, lmcodec
    >>> from lmcodec.training.metrics import metric_path
    >>> dnsmos = evaluate.load(metric_path("dnsmos"))
    >>> audio, _ = lmcodec.load_audio("speech.flac")
    >>> scores = dnsmos.compute(predictions=[audio])
    >>> sorted(scores)
    ['bak', 'bak_per_item', 'ovrl', 'ovrl_per_item', 'sig', 'sig_per_item']
"""


def _missing_packages() -> list:
    return [name for name in ("onnxruntime", "speechmos") if importlib.util.find_spec(name) is None]


def model_path() -> str:
    """The path of the DNSMOS P.835 ONNX model inside the installed `speechmos` package."""
    spec = importlib.util.find_spec("speechmos")
    folders = list(spec.submodule_search_locations or []) if spec is not None else []
    for folder in folders:
        path = os.path.join(folder, *MODEL_FILE)
        if os.path.isfile(path):
            return path
    raise FileNotFoundError(
        f"the speechmos package has no {'/'.join(MODEL_FILE)}: reinstall it (pip install --force-reinstall speechmos)"
    )


def windows(audio: np.ndarray, batch: int = 16):
    """The DNSMOS input windows of one 1-D 16 kHz signal, in float32 batches of at most `batch` x 144160."""
    window = int(INPUT_LENGTH * SAMPLING_RATE)
    while audio.size < window:
        audio = np.concatenate([audio, audio])
    count = int(np.floor(audio.size / SAMPLING_RATE) - INPUT_LENGTH) + 1
    hop = int(HOP_SECONDS * SAMPLING_RATE)
    starts = [index * hop for index in range(count) if index * hop + window <= audio.size]
    for first in range(0, len(starts), batch):
        yield np.stack([audio[start:start + window] for start in starts[first:first + batch]]).astype(np.float32)


@evaluate.utils.file_utils.add_start_docstrings(_DESCRIPTION, _KWARGS_DESCRIPTION)
class Dnsmos(evaluate.Metric):
    def _info(self):
        return evaluate.MetricInfo(
            description=_DESCRIPTION,
            citation=_CITATION,
            inputs_description=_KWARGS_DESCRIPTION,
            features=datasets.Features({"predictions": datasets.Sequence(datasets.Value("float32"))}),
            homepage="https://github.com/microsoft/DNS-Challenge/tree/master/DNSMOS",
            codebase_urls=["https://github.com/microsoft/DNS-Challenge", "https://pypi.org/project/speechmos/"],
            reference_urls=["https://arxiv.org/abs/2110.01763"],
        )

    def _download_and_prepare(self, dl_manager):
        missing = _missing_packages()
        if missing:
            raise ImportError(
                f"the dnsmos metric needs the package{'s' if len(missing) > 1 else ''} {' and '.join(missing)}: "
                f"pip install {' '.join(missing)} (or pip install 'lmcodec[eval]')"
            )
        self._session = None

    def _session_for(self):
        if getattr(self, "_session", None) is None:
            import onnxruntime

            from lmcodec.threads import coding_threads

            options = onnxruntime.SessionOptions()
            options.log_severity_level = 3
            options.intra_op_num_threads = coding_threads()  # the process's thread setting (lmcodec.threads)
            options.inter_op_num_threads = 1
            self._session = onnxruntime.InferenceSession(
                model_path(), sess_options=options, providers=["CPUExecutionProvider"]
            )
        return self._session

    def _compute(self, predictions=None, sampling_rate=SAMPLING_RATE):
        check_sampling_rate(sampling_rate, "dnsmos")
        if predictions is None or len(predictions) == 0:
            raise ValueError("dnsmos got no predictions to score (a list of 1-D 16 kHz signals)")
        model = self._session_for()
        input_name = model.get_inputs()[0].name
        per_item = {"sig": [], "bak": [], "ovrl": []}
        for index, prediction in enumerate(predictions):
            try:
                audio = np.clip(as_signal(prediction, "prediction"), -1.0, 1.0)
            except ValueError as error:
                raise ValueError(f"dnsmos, item {index}: {error}") from None
            # [N, 3]: sig, bak, ovrl of each window before the polynomial fits
            raw = np.concatenate([model.run(None, {input_name: chunk})[0] for chunk in windows(audio)])
            per_item["sig"].append(float(np.mean(SIG_FIT(raw[:, 0]))))
            per_item["bak"].append(float(np.mean(BAK_FIT(raw[:, 1]))))
            per_item["ovrl"].append(float(np.mean(OVRL_FIT(raw[:, 2]))))
        result = {name: float(np.mean(scores)) for name, scores in per_item.items()}
        result.update({f"{name}_per_item": scores for name, scores in per_item.items()})
        return result
