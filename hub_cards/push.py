"""Push an LMCodec checkpoint to the Hugging Face Hub with fresh code and a model card rendered from measured results.

    lmcodec push-to-hub CHECKPOINT REPO_ID [--private] [--revision R] [--results results.json]
                        [--training-facts facts.json] [--commit-message M] [--create-pr]

What is uploaded, in one commit: `model.safetensors`, `config.json` (with `auto_map`), `preprocessor_config.json`, the
model's code files, the checkpoint's `onnx/` folder when it has one (the graphs `lmcodec.runtime.load_codec` runs,
checked against the weights first) and `README.md` (`render_model_card`). The code files are generated at push time
from the installed `lmcodec`: the checkpoint is loaded with `lmcodec.LMCodecModel.from_pretrained` and saved again
with `lmcodec.save_checkpoint` into a temporary folder, so a checkpoint that holds weights and configs only (the
bundled default, for one) still gets code that matches the package it was loaded with.

Network: nothing is contacted before the arguments and files are checked. Then, in offline mode (`HF_HUB_OFFLINE`)
the push stops at once, and otherwise a TCP connection to the endpoint (or to the HTTPS proxy) must open within
`CONNECT_TIMEOUT` seconds: without this check huggingface_hub retries a refused connection for about 24 s. Every
failure is one `LMCodecError` line. The token is huggingface_hub's (`HF_TOKEN`, `hf auth login`) unless passed.
"""

from __future__ import annotations

import argparse
import os
import socket
import sys
import tempfile
import threading
import time
from pathlib import Path
from urllib.parse import urlparse

from lmcodec.errors import LMCodecError

CONNECT_TIMEOUT = 3.0  # seconds for the endpoint's TCP handshake (name resolution included)
OFFICIAL_HOSTS = ("huggingface.co", "hf.co")
TRUE_VALUES = {"1", "ON", "YES", "TRUE"}


# ---------------------------------------------------------------------------------------------------- network
def offline_mode() -> bool:
    """True when huggingface_hub is in offline mode (its import-time constant, or the variable set since)."""
    from huggingface_hub import constants

    return bool(constants.HF_HUB_OFFLINE) or os.environ.get("HF_HUB_OFFLINE", "").upper() in TRUE_VALUES


def probe_address(endpoint: str) -> tuple[str, int]:
    """(host, port) a connection to `endpoint` opens first: the endpoint's, or its proxy's when one applies."""
    import urllib.request

    url = urlparse(endpoint)
    if url.scheme not in ("http", "https") or not url.hostname:
        raise LMCodecError(f"the Hub endpoint {endpoint!r} is not an http(s) URL; fix HF_ENDPOINT.")
    proxy = urllib.request.getproxies().get(url.scheme)
    if proxy and not urllib.request.proxy_bypass(url.hostname):
        proxied = urlparse(proxy if "://" in proxy else f"http://{proxy}")
        if proxied.hostname:
            return proxied.hostname, proxied.port or (443 if proxied.scheme == "https" else 80)
    return url.hostname, url.port or (443 if url.scheme == "https" else 80)


def check_reachable(endpoint: str, timeout: float = CONNECT_TIMEOUT) -> None:
    """Open (and close) a TCP connection to the endpoint within `timeout` seconds, or raise a one-line LMCodecError.

    Runs in a daemon thread so that a hanging name resolution cannot outlast the timeout either."""
    host, port = probe_address(endpoint)
    outcome: dict = {}

    def connect() -> None:
        try:
            socket.create_connection((host, port), timeout=timeout).close()
            outcome["ok"] = True
        except OSError as error:
            outcome["error"] = error

    thread = threading.Thread(target=connect, name="lmcodec-hub-probe", daemon=True)
    thread.start()
    thread.join(timeout + 0.5)
    if outcome.get("ok"):
        return
    error = outcome.get("error")
    reason = (f"no answer within {timeout:g} s" if error is None or isinstance(error, socket.timeout)
              else (getattr(error, "strerror", None) or str(error) or type(error).__name__))
    raise LMCodecError(f"cannot reach the Hugging Face Hub at {endpoint} ({host}:{port}: {reason}); check the network "
                       "connection, HF_ENDPOINT and any proxy settings, then push again.")


def check_online(endpoint: str) -> None:
    if offline_mode():
        raise LMCodecError("cannot push to the Hub in offline mode (HF_HUB_OFFLINE is set); unset HF_HUB_OFFLINE and "
                           "make sure the network reaches the Hub, then push again.")
    check_reachable(endpoint)


def check_token(token: str | bool | None, endpoint: str) -> None:
    """Fail before uploading when the official Hub is the target and no token is available."""
    from huggingface_hub import get_token

    if token in (None, True) and urlparse(endpoint).hostname in OFFICIAL_HOSTS and get_token() is None:
        raise LMCodecError("no Hugging Face token: log in with `hf auth login`, set HF_TOKEN, or pass token=...; "
                           "pushing needs a token with write access.")


def hub_error(error: Exception, repo_id: str) -> LMCodecError:
    """A one-line LMCodecError for anything huggingface_hub or its HTTP client raised."""
    from huggingface_hub.errors import HfHubHTTPError

    status = getattr(getattr(error, "response", None), "status_code", None)
    detail = next((line.strip() for line in str(error).splitlines() if line.strip()), type(error).__name__)
    if isinstance(error, HfHubHTTPError) and status in (401, 403):
        hint = ("the token was refused or lacks write access to this repository: log in again with `hf auth login` "
                "or pass a token with write access")
        return LMCodecError(f"push to {repo_id} failed: {hint} (HTTP {status}: {detail}).")
    return LMCodecError(f"push to {repo_id} failed: {detail}")


# ---------------------------------------------------------------------------------------------------- the push
def check_onnx_graphs(checkpoint_dir: str | os.PathLike) -> None:
    """Raise a one-line LMCodecError unless every ONNX graph in `checkpoint_dir/onnx` (the codec's steps and the fine
    LM's, when described) loads with the folder's `model.safetensors`: what `lmcodec.runtime.load_codec` needs."""
    import json

    from lmcodec.runtime import ONNX_FOLDER
    from lmcodec.runtime.fine_lm import MANIFEST_NAME, OnnxFineLM
    from lmcodec.runtime.graphs import load_graphs

    folder = Path(checkpoint_dir)
    load_graphs(folder, threads=1)
    description = folder / ONNX_FOLDER / MANIFEST_NAME
    if description.is_file():
        for graph in json.loads(description.read_text(encoding="utf-8")).get("graphs", []):
            OnnxFineLM.from_directory(folder / ONNX_FOLDER, graph["num_coarse"],
                                      weights_path=folder / "model.safetensors", threads=1)


def stage_checkpoint(checkpoint_dir: Path, folder: Path):
    """Re-save the checkpoint into `folder` with fresh code files and `auto_map`, and copy its `onnx/` folder after
    checking its graphs against the re-saved weights; returns the loaded model."""
    import shutil

    from lmcodec import LMCodecFeatureExtractor, save_checkpoint
    from lmcodec.loading import load_model
    from lmcodec.runtime import ONNX_FOLDER

    model = load_model(checkpoint_dir)
    extractor = None
    if (checkpoint_dir / "preprocessor_config.json").is_file():
        try:
            extractor = LMCodecFeatureExtractor.from_pretrained(str(checkpoint_dir))
        except (OSError, ValueError, TypeError) as error:
            raise LMCodecError(f"cannot read {checkpoint_dir / 'preprocessor_config.json'}: "
                               f"{str(error).splitlines()[0]}") from None
    save_checkpoint(model, folder, feature_extractor=extractor)
    if (checkpoint_dir / ONNX_FOLDER).is_dir():
        shutil.copytree(checkpoint_dir / ONNX_FOLDER, folder / ONNX_FOLDER,
                        ignore=shutil.ignore_patterns(".*", "__pycache__"))
        try:
            check_onnx_graphs(folder)
        except LMCodecError as error:
            reason = str(error).replace(str(folder), str(checkpoint_dir)).split(";")[0]
            raise LMCodecError(f"the ONNX graphs in {checkpoint_dir / ONNX_FOLDER} do not fit this checkpoint "
                               f"({reason}); re-export them with `lmcodec export-onnx {checkpoint_dir}`, or move the folder away "
                               "to push without them.") from None
    return model


def push_to_hub(checkpoint_dir: str | os.PathLike, repo_id: str, private: bool | None = False,
                revision: str | None = None, results: str | os.PathLike | dict | None = None,
                training_facts: str | os.PathLike | dict | None = None, token: str | bool | None = None,
                commit_message: str | None = None, *, commit_description: str | None = None, create_pr: bool = False,
                endpoint: str | None = None, tags: list[str] | None = None) -> str:
    """Upload the checkpoint in `checkpoint_dir` to the model repository `repo_id`; returns the commit URL (the pull
    request URL with `create_pr=True`).

    The repository is created if needed (`private` applies only then; None: the namespace's default), and
    `revision`, a branch, is created from the default branch if it does not exist. `results`: the `results.json` of
    `lmcodec evaluate` on this checkpoint (path or dict; default: the checkpoint folder's `results.json` if any) for
    the model card; `training_facts`: the dict described in
    `model_card` (path or dict; default: the checkpoint folder's `training_facts.json` if any). `endpoint` defaults
    to huggingface_hub's (HF_ENDPOINT); `tags` are added to the card's.
    """
    from .model_card import build_model_card, find_results, find_training_facts, load_results, read_json

    folder = Path(checkpoint_dir)
    if not isinstance(repo_id, str) or not repo_id.strip() or repo_id.count("/") > 1:
        raise LMCodecError(f"invalid repository id {repo_id!r}: use NAME or NAMESPACE/NAME.")
    if not folder.is_dir() or not (folder / "config.json").is_file():
        raise LMCodecError(f"{folder} is not an LMCodec checkpoint folder (no config.json); pass the folder written by "
                           "lmcodec.save_checkpoint.")
    if not any(folder.glob("*.safetensors")) and not any(folder.glob("*.bin")):
        raise LMCodecError(f"{folder} holds no weights (model.safetensors); pass a complete checkpoint folder.")
    parsed_results = load_results(find_results(folder, results))
    facts = read_json(find_training_facts(folder, training_facts), "training facts")

    from huggingface_hub import CommitOperationAdd, HfApi, constants

    endpoint = (endpoint or constants.ENDPOINT).rstrip("/")
    check_online(endpoint)
    check_token(token, endpoint)
    api = HfApi(endpoint=endpoint, token=token)
    with tempfile.TemporaryDirectory(prefix="lmcodec-push-") as staging:
        staging = Path(staging)
        model = stage_checkpoint(folder, staging)
        # The card is rendered before anything is created on the Hub (a bad results.json stops the push here), and
        # again once the Hub has named the repository when `repo_id` had no namespace.
        build_model_card(model, parsed_results, facts, repo_id=repo_id, folder=staging, tags=tags).save(
            staging / "README.md")
        try:
            created = api.create_repo(repo_id, private=private, exist_ok=True, repo_type="model").repo_id
            if created != repo_id:
                repo_id = created
                build_model_card(model, parsed_results, facts, repo_id=repo_id, folder=staging, tags=tags).save(
                    staging / "README.md")
            files = sorted(path for path in staging.rglob("*") if path.is_file())  # onnx/ too
            if revision and revision != constants.DEFAULT_REVISION and not revision.startswith("refs/"):
                api.create_branch(repo_id, branch=revision, exist_ok=True, repo_type="model")
            import lmcodec

            info = api.create_commit(
                repo_id,
                [CommitOperationAdd(path_in_repo=path.relative_to(staging).as_posix(), path_or_fileobj=str(path))
                 for path in files],
                commit_message=commit_message or f"Upload LMCodec checkpoint (lmcodec {lmcodec.__version__})",
                commit_description=commit_description,
                revision=revision,
                create_pr=create_pr,
                repo_type="model",
            )
        except LMCodecError:
            raise
        except Exception as error:  # noqa: BLE001 - huggingface_hub and httpx raise many types; one line for users
            raise hub_error(error, repo_id) from None
    return (info.pr_url if create_pr and info.pr_url else None) or info.commit_url


def push_model_to_hub(model, repo_id: str, *, feature_extractor=None, **options) -> str:
    """`push_to_hub` for a model in memory (for `LMCodecModel.push_to_hub`): saved to a temporary folder first, with
    `feature_extractor`'s config when given; `options` are those of `push_to_hub`."""
    with tempfile.TemporaryDirectory(prefix="lmcodec-model-") as folder:
        model.save_pretrained(folder)
        if feature_extractor is not None:
            feature_extractor.save_pretrained(folder)
        return push_to_hub(folder, repo_id, **options)


# ---------------------------------------------------------------------------------------------------- CLI
def add_arguments(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """The options of `lmcodec push-to-hub`."""
    add = parser.add_argument
    add("checkpoint", metavar="CHECKPOINT", help="checkpoint folder (config.json, model.safetensors; code optional)")
    add("repo_id", metavar="REPO_ID", help="model repository on the Hub, NAMESPACE/NAME (created if needed)")
    add("--private", action="store_true", help="create the repository as private (ignored if it exists)")
    add("--revision", metavar="R", help="branch to commit to (created from main if missing; default: main)")
    add("--results", metavar="results.json", help="`lmcodec evaluate` results of this checkpoint, for the model card "
                                                   "(default: CHECKPOINT/results.json if present; without any, the "
                                                   "card says no evaluation was run)")
    add("--training-facts", metavar="facts.json", help="JSON of training facts for the card (default: CHECKPOINT/"
                                                       "training_facts.json if present)")
    add("--commit-message", metavar="M", help="commit message")
    add("--create-pr", action="store_true", help="open a pull request instead of committing to the branch")
    parser.set_defaults(handler=run)
    return parser


def run(args) -> int:
    started = time.perf_counter()
    url = push_to_hub(args.checkpoint, args.repo_id, private=args.private, revision=args.revision,
                      results=args.results, training_facts=args.training_facts, commit_message=args.commit_message,
                      create_pr=args.create_pr)
    print(f"pushed {args.checkpoint} to {args.repo_id} in {time.perf_counter() - started:.1f} s: {url}")
    return 0


def main(argv: list[str] | None = None) -> int:
    """`python -m lmcodec.hub_cards.push ...`: the same as `lmcodec push-to-hub ...`."""
    from lmcodec.console import run_subcommand_module

    return run_subcommand_module(add_arguments, "lmcodec push-to-hub", __doc__.splitlines()[0], argv)


if __name__ == "__main__":
    sys.exit(main())
