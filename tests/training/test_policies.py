"""What trains: the `--trainable_layers` table (hf_spam.training.policies), read by freezing,
the frozen-trunk cache and the argument checks; `ModelArguments` works its flags out once."""

from __future__ import annotations

import pytest
from helpers import tiny_classifier

import hf_spam.training.model_arguments as model_arguments
from hf_spam.training.model_arguments import ModelArguments, TrainingSetupError
from hf_spam.training.policies import (
    TRAINABLE_POLICIES,
    TrainablePolicy,
    apply_trainable_layers,
    frozen_trunk_start,
    trainable_parameters,
)

N_LAYERS = 4


def trained_parts(names: list[str]) -> tuple[set[int], bool, bool]:
    blocks = {int(n.split(".")[2]) for n in names if n.startswith("gpt.trf_blocks.")}
    return blocks, any("final_norm" in n for n in names), any("tok_emb" in n for n in names)


@pytest.mark.parametrize("name", [n for n, p in TRAINABLE_POLICIES.items() if not p.adapters])
def test_policy_table_drives_freezing_and_the_cache(name):
    rule = TRAINABLE_POLICIES[name]
    model = apply_trainable_layers(
        tiny_classifier(n_layers=N_LAYERS), ModelArguments(trainable_layers=name)
    )
    _, _, names = trainable_parameters(model)
    blocks, final_norm, embeddings = trained_parts(names)
    top = N_LAYERS if rule.top_blocks is None else rule.top_blocks
    assert blocks == set(range(N_LAYERS - top, N_LAYERS))
    assert (final_norm, embeddings) == (rule.final_norm, rule.embeddings)
    assert {"out_head.weight", "out_head.bias"} <= set(names)
    start = frozen_trunk_start(model, ModelArguments(trainable_layers=name))
    assert start == (None if rule.embeddings else N_LAYERS - top)
    assert rule.description


def test_a_new_table_row_is_all_it_takes(monkeypatch):
    row = TrainablePolicy(3, True, False, "the last three blocks")
    monkeypatch.setitem(TRAINABLE_POLICIES, "last_three_blocks", row)
    args = ModelArguments(trainable_layers="last_three_blocks")
    model = apply_trainable_layers(tiny_classifier(n_layers=N_LAYERS), args)
    assert trained_parts(trainable_parameters(model)[2]) == ({1, 2, 3}, True, False)
    assert frozen_trunk_start(model, args) == 1


def test_last_layer_is_the_books_name_for_head():
    head = apply_trainable_layers(
        tiny_classifier(n_layers=N_LAYERS), ModelArguments(trainable_layers="head")
    )
    last = apply_trainable_layers(
        tiny_classifier(n_layers=N_LAYERS), ModelArguments(trainable_layers="last_layer")
    )
    assert trainable_parameters(head) == trainable_parameters(last)
    assert trainable_parameters(last)[2] == ["out_head.weight", "out_head.bias"]
    # the whole trunk is cached
    assert frozen_trunk_start(last, ModelArguments(trainable_layers="last_layer")) == N_LAYERS


def test_arguments_read_a_saved_config_once(tmp_path, monkeypatch):
    """The shape, the overrides and the saved config are worked out once; a flag set later
    works them out again."""
    folder = tmp_path / "saved"
    folder.mkdir()
    (folder / "config.json").write_text('{"n_embd": 48, "n_head": 6, "n_positions": 128}')
    reads = []
    real = model_arguments.read_config
    monkeypatch.setattr(model_arguments, "read_config", lambda f: reads.append(f) or real(f))
    args = ModelArguments(model_name_or_path=str(folder), config_overrides="drop_rate=0.1")
    for _ in range(3):
        shape = args.shape
        assert (shape["emb_dim"], shape["n_heads"], shape["context_length"]) == (48, 6, 128)
        assert args.context_length == 128
        assert args.overrides == {"drop_rate": 0.1}
    assert len(reads) == 1
    args.config_overrides = "context_length=64"
    assert args.context_length == 64 and args.overrides == {"context_length": 64}
    assert len(reads) == 2


def test_the_policy_is_the_table_row():
    assert ModelArguments(trainable_layers="lora").policy is TRAINABLE_POLICIES["lora"]
    assert ModelArguments(trainable_layers="lora").policy.adapters
    assert not ModelArguments(trainable_layers="lora").policy.frozen_trunk
    assert ModelArguments(trainable_layers="last_block").policy.frozen_trunk
    assert not ModelArguments(trainable_layers="all").policy.frozen_trunk


def test_an_unknown_policy_names_the_flag_and_the_choices():
    with pytest.raises(TrainingSetupError, match=r"--trainable_layers 'bogus' is unknown; choose"):
        ModelArguments(trainable_layers="bogus")


def test_a_cache_asked_for_but_impossible_is_a_warning(caplog):
    """--frozen_trunk_cache true where nothing stays frozen: off, with a warning saying why;
    by default the same is only logged."""
    model = tiny_classifier(n_layers=N_LAYERS)
    with caplog.at_level("INFO", logger="hf_spam.training.policies"):
        assert frozen_trunk_start(model, ModelArguments(trainable_layers="all")) is None
        asked = ModelArguments(trainable_layers="all", frozen_trunk_cache=True)
        assert frozen_trunk_start(model, asked) is None
    levels = [(r.levelname, "trains inside every block" in r.getMessage()) for r in caplog.records]
    assert levels == [("INFO", True), ("WARNING", True)]
    off = ModelArguments(trainable_layers="last_block", frozen_trunk_cache=False)
    assert frozen_trunk_start(model, off) is None
    assert frozen_trunk_start(model, ModelArguments()) == N_LAYERS - 1
