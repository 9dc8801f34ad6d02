"""`lmcodec push-to-hub` end to end against a local Hub-compatible server (`tests/fake_hub.py` on 127.0.0.1): the
uploaded files, code generated at push time, a model card, `from_pretrained` of what was uploaded in a fresh process
without the package; and fast one-line failures offline or when nobody answers.

The pushes run in subprocesses: huggingface_hub reads HF_ENDPOINT, HF_HUB_OFFLINE and HF_HUB_DISABLE_XET when it is
imported, this suite sets HF_HUB_OFFLINE=1 for itself, and each push gets a temporary HF_HOME.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest

import lmcodec
from lmcodec.hub_cards import push_to_hub
from tests.conftest import REPO, speech_like
from tests.fake_hub import FakeHub
from tests.test_hub_cards import DEFAULT_CPU_FACTS, metrics_table, sample_results

TOKEN = "hf_fake_write_token"
CODE_FILES = {"configuration_lmcodec.py", "modeling_lmcodec.py", "feature_extraction_lmcodec.py", "quantizer.py",
              "frames.py", "bitstream.py", "compression.py", "entropy_coding.py", "frame_lm.py"}
CONFIGS = {"config.json", "model.safetensors", "preprocessor_config.json", "README.md"}

REMOTE_SCRIPT = textwrap.dedent(
    """
    import sys
    sys.modules["lmcodec"] = None  # the package must not be needed
    import numpy as np
    from transformers import AutoFeatureExtractor, AutoModel
    checkpoint, audio_path, out_path = sys.argv[1:4]
    model = AutoModel.from_pretrained(checkpoint, trust_remote_code=True).eval()
    extractor = AutoFeatureExtractor.from_pretrained(checkpoint, trust_remote_code=True)
    audio = np.load(audio_path)
    batch = extractor(audio, sampling_rate=16000)
    codes = model.encode(batch["input_values"], batch["padding_mask"]).audio_codes
    values = model.decode(codes, batch["padding_mask"]).audio_values
    stream = model.compress(audio)
    decoded, _ = model.decompress(stream)
    np.savez(out_path, codes=codes.numpy(), values=values.numpy(), module=type(model).__module__,
             stream=np.frombuffer(stream, dtype=np.uint8), decoded=decoded)
    """
)

API_SCRIPT = textwrap.dedent(
    """
    import json, sys
    import lmcodec
    from lmcodec.hub_cards import push_to_hub
    checkpoint, token, out, results, with_facts = sys.argv[1:6]
    first = push_to_hub(checkpoint, "tiny-lmcodec", token=token, commit_message="first push")  # no namespace given
    again = push_to_hub(with_facts, "user/tiny-lmcodec", token=token)  # exists: exist_ok; its training_facts.json
    model = lmcodec.LMCodecModel.from_pretrained(checkpoint)
    pull_request = model.push_to_hub("user/tiny-lmcodec", token=token, create_pr=True,  # renders the card too
                                     feature_extractor=lmcodec.LMCodecFeatureExtractor(), results=results)
    try:
        push_to_hub(checkpoint, "user/refused", token="hf_wrong_token")
        refused = None
    except lmcodec.LMCodecError as error:
        refused = str(error)
    json.dump({"first": first, "again": again, "pull_request": pull_request, "refused": refused}, open(out, "w"))
    """
)

UNREACHABLE_SCRIPT = textwrap.dedent(
    """
    import contextlib, io, json, sys, time
    from lmcodec import LMCodecError
    from lmcodec.hub_cards import main, push_to_hub
    checkpoint, out = sys.argv[1:3]
    report = {}
    for name, endpoint in (("refused", None), ("unresolvable", "http://lmcodec-no-such-host.invalid")):
        started = time.perf_counter()
        try:
            push_to_hub(checkpoint, "user/x", token="hf_x", endpoint=endpoint)
            report[name] = {"error": None}
        except LMCodecError as error:
            report[name] = {"error": str(error), "seconds": time.perf_counter() - started}
    stderr, started = io.StringIO(), time.perf_counter()
    with contextlib.redirect_stderr(stderr):
        code = main([checkpoint, "user/x"])
    report["cli"] = {"code": code, "stderr": stderr.getvalue(), "seconds": time.perf_counter() - started}
    json.dump(report, open(out, "w"))
    """
)


# ---------------------------------------------------------------------------------------------------- fixtures
@pytest.fixture(scope="module")
def weights_only_checkpoint(tmp_path_factory) -> Path:
    """A tiny checkpoint as it might be committed: weights and configs, no code files, no auto_map."""
    import torch

    from tests.conftest import random_codebooks, tiny_config

    torch.manual_seed(0)
    folder = tmp_path_factory.mktemp("weights-only")
    lmcodec.save_checkpoint(random_codebooks(lmcodec.LMCodecModel(tiny_config())), folder)
    for code in folder.glob("*.py"):
        code.unlink()
    for name in ("config.json", "preprocessor_config.json"):
        config = json.loads((folder / name).read_text())
        config.pop("auto_map", None)
        (folder / name).write_text(json.dumps(config, indent=2))
    assert sorted(path.name for path in folder.iterdir()) == ["config.json", "model.safetensors",
                                                              "preprocessor_config.json"]
    return folder


@pytest.fixture(scope="module")
def card_inputs(weights_only_checkpoint, tmp_path_factory) -> tuple[Path, Path, dict]:
    folder = tmp_path_factory.mktemp("card-inputs")
    results = sample_results(lmcodec.LMCodecConfig.from_pretrained(weights_only_checkpoint))
    (folder / "results.json").write_text(json.dumps(results))
    (folder / "facts.json").write_text(json.dumps(DEFAULT_CPU_FACTS))
    return folder / "results.json", folder / "facts.json", results


def push_environment(tmp_path: Path, endpoint: str) -> dict:
    env = {key: value for key, value in os.environ.items()
           if key not in ("PYTHONPATH", "HF_HUB_OFFLINE", "HF_TOKEN", "HF_ENDPOINT") and not key.endswith("_PROXY")
           and not key.endswith("_proxy")}
    env.update(HF_ENDPOINT=endpoint, HF_HUB_DISABLE_XET="1", HF_HOME=str(tmp_path / "hf_home"),
               HF_HUB_DISABLE_TELEMETRY="1", NO_PROXY="127.0.0.1,localhost")
    return env


def run(command: list[str], env: dict, cwd: Path, timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run(command, check=False, env=env, cwd=cwd, capture_output=True, text=True, timeout=timeout)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


# ---------------------------------------------------------------------------------------------------- pushing
def test_push_uploads_fresh_code_and_card_and_loads_without_the_package(weights_only_checkpoint, card_inputs,
                                                                         tmp_path):
    from huggingface_hub import ModelCard, metadata_load

    results_path, facts_path, results = card_inputs
    with FakeHub(token=TOKEN) as hub:
        env = push_environment(tmp_path, hub.url) | {"HF_TOKEN": TOKEN}
        done = run([sys.executable, "-m", "lmcodec.hub_cards.push", str(weights_only_checkpoint), "user/tiny-lmcodec",
                    "--private", "--revision", "dev", "--results", str(results_path), "--training-facts",
                    str(facts_path), "--commit-message", "Add the tiny test model"], env, tmp_path)
        assert done.returncode == 0, done.stderr[-3000:]
        assert not hub.errors and not hub.unexpected, (hub.errors, hub.unexpected)
        repo = hub.repos["user/tiny-lmcodec"]
        uploaded = hub.files("user/tiny-lmcodec", "dev")
        commit = hub.commits("user/tiny-lmcodec")[-1]
    assert done.stdout.strip().endswith(f"{hub.url}/user/tiny-lmcodec/commit/{commit['oid']}")
    assert repo.private and commit["summary"] == "Add the tiny test model" and commit["revision"] == "dev"
    assert set(hub.files("user/tiny-lmcodec", "main")) == {".gitattributes"}  # the branch got the commit, not main
    # Every file: weights (through LFS), configs, the code generated now from this source tree, the card.
    assert set(commit["paths"]) == set(uploaded) - {".gitattributes"}
    assert CONFIGS | CODE_FILES <= set(uploaded)
    assert uploaded["model.safetensors"] in hub.lfs_objects.values()
    assert uploaded["model.safetensors"] == (weights_only_checkpoint / "model.safetensors").read_bytes()
    for name in CODE_FILES:
        assert uploaded[name] == (REPO / "modeling_lmcodec" / name).read_bytes(), name
    config = json.loads(uploaded["config.json"])
    assert set(config["auto_map"]) >= {"AutoConfig", "AutoModel"}
    assert "auto_map" in json.loads(uploaded["preprocessor_config.json"])
    assert ("POST", "/api/validate-yaml") in hub.requests  # the README's metadata was checked before the upload

    downloaded = tmp_path / "downloaded"
    downloaded.mkdir()
    for name, data in uploaded.items():
        (downloaded / name).write_bytes(data)

    # The card: every system row, the model-index, the training record, the licences.
    readme = (downloaded / "README.md").read_text()
    assert list(metrics_table(readme)) == [row["name"] for row in results["systems"]]
    assert len(ModelCard.load(downloaded / "README.md").data.eval_results) == 2 * 6  # 4 metrics, kbps, RTF
    assert metadata_load(downloaded / "README.md")["model-index"][0]["name"] == "tiny-lmcodec"
    assert DEFAULT_CPU_FACTS["commands"][0] in readme and "CC BY 4.0" in readme and "tiny test model" in readme
    assert 'AutoModel.from_pretrained("user/tiny-lmcodec", trust_remote_code=True)' in readme

    # What was uploaded loads in a fresh process without lmcodec, and computes what the original model computes.
    audio = speech_like(0.9, seed=7)
    np.save(tmp_path / "audio.npy", audio)
    workdir = tmp_path / "elsewhere"
    workdir.mkdir()
    (workdir / "remote.py").write_text(REMOTE_SCRIPT)
    env = push_environment(tmp_path, "http://127.0.0.1:9") | {"HF_HUB_OFFLINE": "1",
                                                             "HF_HOME": str(tmp_path / "hf_home_remote")}
    done = run([sys.executable, "remote.py", str(downloaded), str(tmp_path / "audio.npy"), str(tmp_path / "out.npz")],
               env, workdir)
    assert done.returncode == 0, done.stderr[-3000:]
    remote = np.load(tmp_path / "out.npz")
    assert not str(remote["module"]).startswith("lmcodec")

    original = lmcodec.LMCodecModel.from_pretrained(weights_only_checkpoint).eval()
    batch = lmcodec.LMCodecFeatureExtractor()(audio, sampling_rate=16000)
    codes = original.encode(batch["input_values"], batch["padding_mask"]).audio_codes
    values = original.decode(codes, batch["padding_mask"]).audio_values
    np.testing.assert_array_equal(remote["codes"], codes.numpy())
    np.testing.assert_allclose(remote["values"], values.numpy(), atol=1e-6)
    assert remote["stream"].tobytes() == original.compress(audio)
    np.testing.assert_allclose(remote["decoded"], original.decompress(remote["stream"].tobytes())[0], atol=1e-6)


def test_python_api_existing_repository_and_pull_request(weights_only_checkpoint, card_inputs, tmp_path):
    results_path, facts_path, _ = card_inputs
    (tmp_path / "api.py").write_text(API_SCRIPT)
    with_facts = tmp_path / "checkpoint-with-facts"
    shutil.copytree(weights_only_checkpoint, with_facts)
    shutil.copy(facts_path, with_facts / "training_facts.json")  # found beside the weights when no facts are passed
    with FakeHub(token=TOKEN) as hub:
        done = run([sys.executable, "api.py", str(weights_only_checkpoint), TOKEN, str(tmp_path / "urls.json"),
                    str(results_path), str(with_facts)], push_environment(tmp_path, hub.url), tmp_path)
        assert done.returncode == 0, done.stderr[-3000:]
        assert not hub.errors and not hub.unexpected, (hub.errors, hub.unexpected)
        urls = json.loads((tmp_path / "urls.json").read_text())
        commits = hub.commits("user/tiny-lmcodec")
        main_files = hub.files("user/tiny-lmcodec", "main")
        pull_request = hub.files("user/tiny-lmcodec", "refs/pr/1")
    assert list(hub.repos) == ["user/tiny-lmcodec"] and not hub.repos["user/tiny-lmcodec"].private
    assert [commit["revision"] for commit in commits] == ["main", "main", "main", "refs/pr/1"]
    assert commits[1]["summary"] == "first push" and commits[2]["summary"].startswith("Upload LMCodec checkpoint")
    assert urls["first"] == f"{hub.url}/user/tiny-lmcodec/commit/{commits[1]['oid']}"
    # "tiny-lmcodec" had no namespace: the card names the repository the Hub created.
    assert 'AutoModel.from_pretrained("user/tiny-lmcodec")' in commits[1]["files"]["README.md"].decode()
    assert urls["pull_request"] == f"{hub.url}/user/tiny-lmcodec/discussions/1"
    assert urls["refused"].startswith("push to user/refused failed: the token was refused") and "HTTP 401" in urls[
        "refused"] and "\n" not in urls["refused"]
    assert CONFIGS | CODE_FILES <= set(main_files) and CONFIGS | CODE_FILES <= set(pull_request)
    readme = main_files["README.md"].decode()
    assert "No evaluation was run" in readme  # no results given to those pushes
    assert DEFAULT_CPU_FACTS["commands"][0] in readme and "training_facts.json" not in main_files
    assert 'AutoModel.from_pretrained("user/tiny-lmcodec")' in readme
    assert "No evaluation was run" not in pull_request["README.md"].decode()
    assert pull_request["model.safetensors"] == main_files["model.safetensors"]


# ---------------------------------------------------------------------------------------------------- failing fast
def test_offline_mode_fails_at_once_with_one_line(weights_only_checkpoint, monkeypatch, capsys):
    from lmcodec.hub_cards import main

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    started = time.perf_counter()
    with pytest.raises(lmcodec.LMCodecError, match="offline mode") as error:
        push_to_hub(weights_only_checkpoint, "user/x", token="hf_x")
    assert time.perf_counter() - started < 5 and "\n" not in str(error.value)
    started = time.perf_counter()
    assert main([str(weights_only_checkpoint), "user/x"]) == 2
    stderr = capsys.readouterr().err.strip()
    assert time.perf_counter() - started < 5
    assert stderr.startswith("lmcodec: error: cannot push to the Hub in offline mode") and len(stderr.splitlines()) == 1


def test_unreachable_endpoint_fails_fast_with_one_line(weights_only_checkpoint, tmp_path):
    (tmp_path / "unreachable.py").write_text(UNREACHABLE_SCRIPT)
    endpoint = f"http://127.0.0.1:{free_port()}"  # nobody listens there
    started = time.perf_counter()
    done = run([sys.executable, "unreachable.py", str(weights_only_checkpoint), str(tmp_path / "report.json")],
               push_environment(tmp_path, endpoint), tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    assert time.perf_counter() - started < 60  # the whole process, imports included
    report = json.loads((tmp_path / "report.json").read_text())
    for name in ("refused", "unresolvable"):
        assert report[name]["error"] and report[name]["seconds"] < 5, report
        error = report[name]["error"]
        assert error.startswith("cannot reach the Hugging Face Hub") and "\n" not in error
    assert "Connection refused" in report["refused"]["error"] and endpoint in report["refused"]["error"]
    cli = report["cli"]
    assert cli["code"] == 2 and cli["seconds"] < 5 and len(cli["stderr"].strip().splitlines()) == 1
    assert cli["stderr"].startswith("lmcodec: error: cannot reach the Hugging Face Hub")


@pytest.mark.parametrize("checkpoint, repo_id, message", [
    ("missing", "user/x", "not an LMCodec checkpoint folder"),
    ("checkpoint", "a/b/c", "invalid repository id"),
    ("checkpoint", "user/x", "results file not found"),
])
def test_bad_arguments_fail_before_any_network(weights_only_checkpoint, tmp_path, monkeypatch, checkpoint, repo_id,
                                               message):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")  # the argument errors come first, whatever the network
    folder = weights_only_checkpoint if checkpoint == "checkpoint" else tmp_path / checkpoint
    results = tmp_path / "missing-results.json" if message.startswith("results") else None
    with pytest.raises(lmcodec.LMCodecError, match=message):
        push_to_hub(folder, repo_id, results=results)


# ---------------------------------------------------------------------------------------------------- the ONNX graphs
@pytest.mark.slow
def test_push_of_the_bundled_default_uploads_its_onnx_graphs_and_code(tmp_path):
    """The bundled default (weights, configs, onnx/; no code) pushed as it is: the repository gets its ONNX graphs
    unchanged under onnx/, the code and auto_map it lacked, and a card whose file list is exactly what was uploaded.
    Downloaded, it runs the card's no-package example where `lmcodec` cannot be imported, and the runtime loads its
    graphs and writes the same bytes as from the bundled folder."""
    import lmcodec.runtime
    from lmcodec.hub_cards.model_card import claimed_code_files
    from tests.card_examples import python_blocks, run_python, section, workdir
    from tests.test_hub_cards import listed_files

    default = Path(lmcodec.DEFAULT_CHECKPOINT)
    with FakeHub(token=TOKEN) as hub:
        env = push_environment(tmp_path, hub.url) | {"HF_TOKEN": TOKEN}
        done = run([sys.executable, "-m", "lmcodec.hub_cards.push", str(default), "user/lmcodec-default"], env,
                   tmp_path, timeout=300)
        assert done.returncode == 0, done.stderr[-3000:]
        assert not hub.errors and not hub.unexpected, (hub.errors, hub.unexpected)
        uploaded = hub.files("user/lmcodec-default")
    graphs = sorted(path.relative_to(default).as_posix() for path in (default / "onnx").iterdir())
    assert len(graphs) == 6
    for name in graphs:
        assert uploaded[name] == (default / name).read_bytes(), name
    assert CONFIGS | CODE_FILES <= set(uploaded)
    readme = uploaded["README.md"].decode()
    assert listed_files(readme) == set(uploaded) - {".gitattributes"}
    assert "| LMCodec Nc=3 (default) | 1.167 |" in readme  # the numbers of the folder's own results.json
    assert "lmcodec.runtime.load_codec(\"user/lmcodec-default\")" in readme

    downloaded = tmp_path / "downloaded"
    for name, data in uploaded.items():
        (downloaded / name).parent.mkdir(parents=True, exist_ok=True)
        (downloaded / name).write_bytes(data)
    assert all((downloaded / name).is_file() for names in claimed_code_files(downloaded).values() for name in names)
    remote = python_blocks(section(readme, "How to use"))[1]
    assert 'AutoModel.from_pretrained("user/lmcodec-default", trust_remote_code=True)' in remote
    run_python(remote.replace('"user/lmcodec-default"', json.dumps(str(downloaded)))
               + "assert not type(model).__module__.startswith('lmcodec') and codes.shape[1] == 12\n",
               workdir(tmp_path), block=("lmcodec",))
    audio = speech_like(0.8, seed=2)
    assert lmcodec.runtime.load_codec(downloaded).compress(audio) == lmcodec.runtime.load_codec(default).compress(audio)


def test_graphs_that_do_not_fit_the_weights_stop_the_push_before_any_upload(weights_only_checkpoint, tmp_path):
    """An onnx/ folder exported from other weights would only fail later in the runtime: the push refuses it, in one
    line naming the fix, before anything is uploaded."""
    from lmcodec.hub_cards.push import stage_checkpoint

    checkpoint = tmp_path / "checkpoint"
    shutil.copytree(weights_only_checkpoint, checkpoint)
    shutil.copytree(Path(lmcodec.DEFAULT_CHECKPOINT) / "onnx", checkpoint / "onnx")
    staging = tmp_path / "staging"
    with pytest.raises(lmcodec.LMCodecError, match=r"the ONNX graphs in .* do not fit this checkpoint") as error:
        stage_checkpoint(checkpoint, staging)
    message = str(error.value)
    assert "\n" not in message and f"lmcodec export-onnx {checkpoint}`" in message and str(staging) not in message
