"""The book's classifier knobs (ch06 `additional_experiments.py`) against transformers' GPT-2.

The independent formulation is the book's: transformers' `GPT2Model` with the same weights, called
on the padded batch with NO attention mask (the book passes none), its final-norm states read at
the stated position (or averaged, as the book averages the head's logits), then our `out_head`.
Bidirectional attention in the reference: eager attention with a 4-D boolean mask of ones, which
transformers uses as given (checked here against the causal output, which it must not equal).
"""

from __future__ import annotations

import json

import pytest
import torch
from helpers import pad
from torch.nn import functional as F
from transformers import pipeline

from hf_spam import GPTConfig, GPTForSequenceClassification
from hf_spam.model.weights import load_openai_gpt2

EOT = 50256
FIXED = 24  # the book pads every text to one length (its longest training example)
TINY_SMALL_VOCAB = dict(vocab_size=500, context_length=64, emb_dim=32, n_heads=4, n_layers=2)


def texts(n: int = 6, seed: int = 0) -> list[list[int]]:
    """Token lists of lengths 1..FIXED without the end-of-text id, so the pad id marks padding
    (the book's `flexible` finds the last real token by counting non-pad ids)."""
    g = torch.Generator().manual_seed(seed)
    lengths = torch.randint(1, FIXED + 1, (n,), generator=g).tolist()
    lengths[0] = FIXED
    return [torch.randint(0, EOT, (k,), generator=g).tolist() for k in lengths]


def load(folder, **knobs) -> GPTForSequenceClassification:
    torch.manual_seed(1)  # the fresh out_head
    return load_openai_gpt2(GPTForSequenceClassification, folder, num_labels=2, **knobs).eval()


def reference_states(gpt2, ids: torch.Tensor, bidirectional: bool = False) -> torch.Tensor:
    """transformers' GPT-2 final-norm states of the padded rows, no padding mask."""
    kwargs = {}
    if bidirectional:
        kwargs["attention_mask"] = torch.ones(ids.shape[0], 1, ids.shape[1], ids.shape[1]).bool()
    with torch.no_grad():
        return gpt2.transformer(ids, **kwargs).last_hidden_state


def assert_logits_and_loss(model, reference_logits, **inputs):
    labels = torch.arange(reference_logits.shape[0]) % 2
    with torch.no_grad():
        fast = model(**inputs, labels=labels)
        every_position = model(**inputs, labels=labels, output_hidden_states=True)
    for out in (fast, every_position):
        torch.testing.assert_close(out.logits, reference_logits, atol=1e-5, rtol=0)
        expected_loss = F.cross_entropy(reference_logits, labels)
        torch.testing.assert_close(out.loss, expected_loss, atol=1e-5, rtol=0)


@pytest.fixture(scope="module")
def checkpoint(tiny_checkpoints):
    return tiny_checkpoints["bare"]


@pytest.mark.parametrize("bidirectional", [False, True])
@pytest.mark.parametrize(("position", "read"), [("last", -1), ("first", 0)])
def test_last_and_first_read_the_book_padded_row(checkpoint, position, read, bidirectional):
    folder, gpt2 = checkpoint
    model = load(folder, trainable_token_pos=position, disable_causal_mask=bidirectional)
    ids, mask = pad(texts(), FIXED)
    states = reference_states(gpt2, ids, bidirectional)
    expected = model.out_head(states[:, read]).detach()
    # The mask is ignored: the pads are tokens, as in the book.
    assert_logits_and_loss(model, expected, input_ids=ids, attention_mask=mask)
    assert_logits_and_loss(model, expected, input_ids=ids)


@pytest.mark.parametrize("bidirectional", [False, True])
@pytest.mark.parametrize("position", ["last", "first"])
def test_average_embeddings_is_the_book_mean_over_every_position(
    checkpoint, position, bidirectional
):
    folder, gpt2 = checkpoint
    model = load(
        folder,
        trainable_token_pos=position,
        average_embeddings=True,
        disable_causal_mask=bidirectional,
    )
    ids, mask = pad(texts(seed=2), FIXED)
    states = reference_states(gpt2, ids, bidirectional)
    # The book: the head at every position, then `logits.mean(dim=1)`, pads included.
    expected = model.out_head(states).mean(dim=1).detach()
    assert_logits_and_loss(model, expected, input_ids=ids, attention_mask=mask)


def test_disable_causal_mask_reference_really_is_bidirectional(checkpoint):
    _, gpt2 = checkpoint
    ids, _ = pad(texts(seed=3), FIXED)
    causal, both_ways = reference_states(gpt2, ids), reference_states(gpt2, ids, True)
    assert (causal[:, 0] - both_ways[:, 0]).abs().max() > 1e-2


@pytest.mark.parametrize("side", ["right", "left"])
def test_flexible_is_the_book_flexible_for_right_padding(checkpoint, side):
    folder, gpt2 = checkpoint
    model = load(folder)  # the default
    assert model.config.trainable_token_pos == "flexible"
    rows = texts(seed=4)
    book_ids, _ = pad(rows, FIXED)
    # The book's `flexible`: the last position that is not the pad id, in the unmasked batch.
    book_last = (book_ids != EOT).sum(dim=1) - 1
    states = reference_states(gpt2, book_ids)
    expected = model.out_head(states[torch.arange(len(rows)), book_last]).detach()
    ids, mask = pad(rows, FIXED + 5, side)  # any padding: the mask decides
    assert_logits_and_loss(model, expected, input_ids=ids, attention_mask=mask)


def test_flexible_average_and_bidirectional_see_only_real_tokens(checkpoint):
    """Combinations the book never ran: with `flexible` padding stays invisible."""
    folder, gpt2 = checkpoint
    rows = texts(seed=5)
    ids, mask = pad(rows, FIXED + 3, "left")
    for knobs in ({"average_embeddings": True}, {"disable_causal_mask": True}):
        model = load(folder, **knobs)
        expected = []
        for row in rows:  # each text alone, unpadded
            states = reference_states(gpt2, torch.tensor([row]), "disable_causal_mask" in knobs)
            state = states[0].mean(0) if "average_embeddings" in knobs else states[0, -1]
            expected.append(model.out_head(state).detach())
        assert_logits_and_loss(model, torch.stack(expected), input_ids=ids, attention_mask=mask)


@pytest.mark.parametrize("position", ["last", "first"])
def test_padded_length_rebuilds_the_book_row_from_any_padding(checkpoint, position):
    folder, gpt2 = checkpoint
    model = load(
        folder, trainable_token_pos=position, padded_length=FIXED, disable_causal_mask=True
    )
    rows = texts(seed=6)
    book_ids, _ = pad(rows, FIXED)
    states = reference_states(gpt2, book_ids, bidirectional=True)
    expected = model.out_head(states[:, -1 if position == "last" else 0]).detach()
    for side in ("left", "right"):
        ids, mask = pad(rows, FIXED + 4, side, fill=0)
        assert_logits_and_loss(model, expected, input_ids=ids, attention_mask=mask)
    with torch.no_grad():  # one text at a time, unpadded: what pipeline() sends
        alone = torch.cat([model(input_ids=torch.tensor([row])).logits for row in rows])
        too_long = model(input_ids=torch.tensor([rows[0] + [7, 8, 9]])).logits
    torch.testing.assert_close(alone, expected, atol=1e-5, rtol=0)
    torch.testing.assert_close(too_long[0], expected[0], atol=1e-5, rtol=0)  # cut as the book


@pytest.mark.parametrize("position", ["last", "first", "flexible"])
def test_block_inputs_from_trunk_inputs_resume_exactly(checkpoint, position):
    folder, _ = checkpoint
    model = load(folder, trainable_token_pos=position, padded_length=FIXED)
    ids, mask = pad(texts(seed=7), FIXED, "right")
    with torch.no_grad():
        expected = model(input_ids=ids, attention_mask=mask).logits
        trunk_ids, trunk_mask = model.trunk_inputs(ids, mask)
        for start in (1, 2):
            states = model.gpt(input_ids=trunk_ids, attention_mask=trunk_mask, stop_block=start)
            got = model(
                block_inputs=states.last_hidden_state, attention_mask=mask, start_block=start
            ).logits
            torch.testing.assert_close(got, expected, atol=1e-5, rtol=0)


def test_knobs_are_saved_in_config_json(checkpoint, tmp_path):
    folder, _ = checkpoint
    knobs = dict(trainable_token_pos="last", average_embeddings=True, disable_causal_mask=True)
    model = load(folder, **knobs, padded_length=FIXED)
    model.save_pretrained(tmp_path)
    saved = json.loads((tmp_path / "config.json").read_text())
    assert {k: saved[k] for k in (*knobs, "padded_length")} == {**knobs, "padded_length": FIXED}
    loaded = GPTForSequenceClassification.from_pretrained(tmp_path).eval()
    ids, mask = pad(texts(seed=8), FIXED + 2, "left")
    with torch.no_grad():
        torch.testing.assert_close(
            loaded(input_ids=ids, attention_mask=mask).logits,
            model(input_ids=ids, attention_mask=mask).logits,
            atol=1e-6,
            rtol=0,
        )


def test_pipeline_reads_as_trained(checkpoint, tmp_path, tiktoken_available):
    from hf_spam.data import get_tokenizer

    folder, _ = checkpoint
    model = load(folder, trainable_token_pos="last", padded_length=FIXED)
    tokenizer = get_tokenizer(model.config.context_length)
    model.save_pretrained(tmp_path)
    tokenizer.save_pretrained(tmp_path)
    text = ["free prize call now", "see you at home later mum"]
    ids = tokenizer(text, padding="max_length", max_length=FIXED, return_tensors="pt")
    with torch.no_grad():  # the book's rows: padded to FIXED with the pad id
        expected = model(input_ids=ids["input_ids"]).logits.softmax(-1)
    classify = pipeline("text-classification", model=str(tmp_path))
    for batch_size in (1, 2):
        got = classify(text, top_k=None, batch_size=batch_size)
        for row, answers in enumerate(got):
            scores = {a["label"]: a["score"] for a in answers}
            probs = [scores[model.config.id2label[i]] for i in range(2)]
            assert probs == pytest.approx(expected[row].tolist(), abs=1e-5)


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        (dict(trainable_token_pos="middle"), "trainable_token_pos='middle'; expected one of"),
        (dict(padded_length=65), r"padded_length \(65\) must be between 1 and context_length"),
        (
            dict(trainable_token_pos="last", padded_length=8, vocab_size=500),
            r"padded_length needs a pad_token_id within the vocabulary \(0..499\), got 50256",
        ),
    ],
)
def test_bad_knob_values_name_the_field(fields, message):
    with pytest.raises(ValueError, match=message):
        GPTConfig(**{**TINY_SMALL_VOCAB, "vocab_size": 50257, **fields})


# A vocabulary smaller than GPT-2's must classify padded batches.


@pytest.mark.parametrize("pad_token_id", [EOT, 0, None])  # EOT: GPT-2's, outside this vocabulary
def test_small_vocabulary_padded_batches_equal_rows_one_by_one(pad_token_id):
    torch.manual_seed(0)
    config = GPTConfig(**TINY_SMALL_VOCAB, num_labels=2, pad_token_id=pad_token_id)
    model = GPTForSequenceClassification(config).eval()
    g = torch.Generator().manual_seed(9)
    rows = [torch.randint(0, 500, (k,), generator=g).tolist() for k in (5, 1, 17, 9, 17, 3)]
    with torch.no_grad():
        alone = torch.cat([model(input_ids=torch.tensor([row])).logits for row in rows])
        unpadded = model(input_ids=torch.tensor([rows[2], rows[4]])).logits
        torch.testing.assert_close(unpadded, alone[[2, 4]], atol=1e-5, rtol=0)
        for side in ("right", "left"):
            for fill in (0, 499, EOT):  # whatever the caller pads with, the mask decides
                ids, mask = pad(rows, 20, side, fill=fill)
                got = model(input_ids=ids, attention_mask=mask).logits
                torch.testing.assert_close(got, alone, atol=1e-5, rtol=0)
        empty = model(input_ids=torch.zeros((1, 0), dtype=torch.long)).logits
        ids, mask = pad([[], rows[0]], 6)
        with_empty = model(input_ids=ids, attention_mask=mask).logits
    torch.testing.assert_close(with_empty, torch.cat([empty, alone[:1]]), atol=1e-5, rtol=0)
