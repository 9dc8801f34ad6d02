"""Model and dataset card templates for checkpoints shared on the Hugging Face Hub.

- `render_model_card(checkpoint_dir, results_json_path, training_facts, repo_id=None) -> huggingface_hub.ModelCard`:
  the README.md of a checkpoint, filled from its config, its weights (parameter counts), the `results.json` of
  `lmcodec evaluate` (every system row, and LMCodec's operating points as `model-index` `EvalResult`s) and a small
  dict of training facts; the training corpora's licences and attribution are part of the template
  (`model_card.CORPORA`). Without results.json the card says that no evaluation was run; random weights and tiny
  test models are flagged at the top.
- `render_dataset_card(shards_dir, repo_id=None, command=None) -> huggingface_hub.DatasetCard`: the card of the
  Parquet shards written by `training/prepare_librilight.py`, counted from the shards (LibriLight: CC BY 4.0).
- `push_to_hub(checkpoint_dir, repo_id, private=False, revision=None, results=None, training_facts=None, token=None,
  commit_message=None) -> str`: one commit with the weights, `config.json`, `preprocessor_config.json`, the model's
  code generated at push time, and the rendered README.md; `push_model_to_hub(model, repo_id, ...)` does the same
  for a model in memory. Offline or unreachable Hubs fail within seconds with one `LMCodecError` line.
- `main(argv)`: the `lmcodec push-to-hub` command line (`python -m lmcodec.hub_cards.push`).

Templates live in `templates/*.md` (Jinja, rendered with `ModelCard.from_template` / `DatasetCard.from_template`).
The names are imported lazily, so `import lmcodec.hub_cards` stays cheap.
"""

from __future__ import annotations

_EXPORTS = {
    "render_model_card": "model_card",
    "build_model_card": "model_card",
    "CORPORA": "model_card",
    "render_dataset_card": "dataset_card",
    "push_to_hub": "push",
    "push_model_to_hub": "push",
    "main": "push",
}

__all__ = ["CORPORA", "build_model_card", "main", "push_model_to_hub", "push_to_hub", "render_dataset_card",
           "render_model_card"]


def __getattr__(name: str):
    if name in _EXPORTS:
        import importlib

        value = getattr(importlib.import_module(f".{_EXPORTS[name]}", __name__), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_EXPORTS))
