"""Tests of tokenization (the saved GPT2TokenizerFast, built from the bundled BPE files, gives
tiktoken's GPT-2 ids; a checkpoint's own tokenizer files give their ids), truncation, padding
(`--context_length`) and collation (`DataCollatorWithPadding`)."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from helpers import (
    GPT2_BPE,
    HAM_WORDS,
    SPAM_WORDS,
    no_network_env,
    save_small_bpe,
    three_class_frame,
    write_frame,
)
from hypothesis import given, settings
from hypothesis import strategies as st

from hf_spam.data import (
    DataArguments,
    DataError,
    UsageError,
    check_tokenizer_fits,
    get_data_collator,
    get_tokenizer,
    gpt2_encoding,
    load_tokenizer,
    prepare_data,
)
from hf_spam.errors import CheckpointError, ModelLoadError

EDGE_CASES = [
    "",
    " ",
    "Hello world",
    "Win a prize <|endoftext|> now",
    "<|endoftext|>",
    "<|endoftext|><|endoftext|>x",
    "😀🎉 thumbs 👍🏽 family 👨‍👩‍👧 𝔘𝔫𝔦𝔠𝔬𝔡𝔢 𠜎𠜱",
    "a  b   c    d",
    "   leading and trailing   ",
    "line\nbreak\n\n\nparagraph\r\nwindows\ttab",
    "\n\n\n",
    "It's we're they've I'd you'll",
    "naïve café 漢字 ελληνικά",
    "12345678901234567890",
    "\u200b\u00a0\ufeff zero-width",
]


def test_tokenizer_matches_tiktoken_on_the_whole_sms_file(
    sms_rows: list[tuple[str, str]], tokenizer, encoding
) -> None:
    texts = [text for _, text in sms_rows]
    assert tokenizer(texts)["input_ids"] == encoding.encode_ordinary_batch(texts)


def test_bundled_encoding_is_tiktokens(sms_rows: list[tuple[str, str]], encoding) -> None:
    """`gpt2_encoding()` (the bundled files, no cache) is tiktoken's own `gpt2`, special token
    included: `encode` refuses it, `allowed_special` makes it 50256, `encode_ordinary` text."""
    bundled = gpt2_encoding()
    texts = [text for _, text in sms_rows] + EDGE_CASES
    assert bundled.encode_ordinary_batch(texts) == encoding.encode_ordinary_batch(texts)
    assert bundled.encode_batch(texts, allowed_special="all") == encoding.encode_batch(
        texts, allowed_special="all"
    )
    assert (bundled.n_vocab, bundled.eot_token) == (encoding.n_vocab, encoding.eot_token)
    assert bundled.special_tokens_set == encoding.special_tokens_set == {"<|endoftext|>"}
    for special in ("<|endoftext|>", "a <|endoftext|> b"):
        for reference in (bundled, encoding):
            with pytest.raises(ValueError, match="disallowed special token"):
                reference.encode(special)
    assert bundled.encode("a <|endoftext|>", allowed_special={"<|endoftext|>"})[-1] == 50256
    assert all(bundled.decode(bundled.encode_ordinary(text)) == text for text in texts)


def test_tokenizer_is_transformers_gpt2_from_the_same_files(sms_rows, tokenizer) -> None:
    """transformers reads the two files itself (the v5 `vocab=`/`merges=` paths): same ids,
    same vocabulary; a literal '<|endoftext|>' is text in both with `split_special_tokens`."""
    from transformers import GPT2TokenizerFast

    reference = GPT2TokenizerFast(
        vocab=str(GPT2_BPE / "encoder.json"),
        merges=str(GPT2_BPE / "vocab.bpe"),
        split_special_tokens=True,
    )
    texts = [text for _, text in sms_rows] + EDGE_CASES
    assert tokenizer(texts)["input_ids"] == reference(texts)["input_ids"]
    assert tokenizer.get_vocab() == reference.get_vocab()
    unsplit = GPT2TokenizerFast(
        vocab=str(GPT2_BPE / "encoder.json"), merges=str(GPT2_BPE / "vocab.bpe")
    )
    assert unsplit("a <|endoftext|>")["input_ids"] == [64, 220, 50256]  # the control token
    assert tokenizer("a <|endoftext|>")["input_ids"] == reference("a <|endoftext|>")["input_ids"]
    assert 50256 not in tokenizer("a <|endoftext|>")["input_ids"]


def test_tokenizer_needs_no_network_and_no_tiktoken_cache(tmp_path: Path, encoding) -> None:
    """A fresh process with the network down and an unwritable, absent tiktoken cache: the
    bundled files make the tokenizer and tiktoken's encoding, and no cache is created."""
    env = no_network_env(tmp_path, switches=False)
    script = (
        "import json\n"
        "from hf_spam.data import get_tokenizer, gpt2_encoding\n"
        "text = 'Win a prize <|endoftext|> now 😀'\n"
        "print(json.dumps([get_tokenizer()(text)['input_ids'], "
        "gpt2_encoding().encode_ordinary(text)]))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", script], env=env, capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stderr[-3000:]
    expected = encoding.encode_ordinary("Win a prize <|endoftext|> now 😀")
    assert json.loads(result.stdout.splitlines()[-1]) == [expected, expected]
    assert not Path(env["TIKTOKEN_CACHE_DIR"]).exists()


def test_a_damaged_bpe_file_is_named(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from hf_spam.data import bundled, tokenization

    copy = tmp_path / "bundled"
    shutil.copytree(GPT2_BPE, copy)
    (copy / "encoder.json").write_text(json.dumps({"a": 0}))
    monkeypatch.setattr(bundled, "BUNDLED_DIR", copy)
    bundled.bundled_file.cache_clear()
    tokenization.gpt2_vocab_and_merges.cache_clear()
    try:
        with pytest.raises(DataError, match=rf"^{re.escape(str(copy / 'encoder.json'))}: sha256"):
            get_tokenizer()
    finally:
        bundled.bundled_file.cache_clear()
        tokenization.gpt2_vocab_and_merges.cache_clear()


def test_dynamic_padding_truncates_and_collates(tmp_path: Path, cache_dir: str, encoding) -> None:
    frame = three_class_frame(6)
    frame.loc[0, "text"] = "a long text " * 20
    path = write_frame(frame, tmp_path / "d.csv")
    args = DataArguments(dataset=str(path), balance=False, max_length=8, data_cache_dir=cache_dir)
    prepared = prepare_data(args, context_length=16)
    assert prepared.max_length == 8
    everything = [example for ds in prepared.dataset.values() for example in ds]
    assert (
        sum(prepared.report.truncated.values())
        == sum(len(encoding.encode_ordinary(text)) > 8 for text in frame["text"])
        > 0
    )
    for example in everything:
        ids = encoding.encode_ordinary(example["text"])[:8]
        assert example["input_ids"] == ids  # not padded: the collator does it
        assert example["length"] == len(ids)
        assert example["attention_mask"] == [1] * len(ids)
    short = {"input_ids": [5], "attention_mask": [1], "label": 2, "text": "x", "length": 1}
    batch = get_data_collator(prepared)([dict(everything[0]), short])
    width = len(everything[0]["input_ids"])
    assert batch["input_ids"].shape == batch["attention_mask"].shape == (2, width)
    assert batch["input_ids"][1].tolist() == [5] + [50256] * (width - 1)
    assert batch["attention_mask"][1].tolist() == [1] + [0] * (width - 1)
    assert batch["labels"].tolist() == [everything[0]["label"], 2]
    assert set(batch) == {"input_ids", "attention_mask", "labels"}


def test_longest_train_truncated_to_max_length(
    tmp_path: Path, cache_dir: str, tiktoken_available: None
) -> None:
    """Texts longer than the context are cut only when asked (--max_length; else refused)."""
    path = write_frame(three_class_frame(10), tmp_path / "d.csv")
    args = DataArguments(
        dataset=str(path), padding="longest_train", max_length=4, data_cache_dir=cache_dir
    )
    prepared = prepare_data(args, context_length=4)
    assert prepared.max_length == 4
    assert all(len(ids) == 4 for ds in prepared.dataset.values() for ids in ds["input_ids"])
    assert prepared.report.truncated == {"train": 21, "validation": 3, "test": 6}
    batch = get_data_collator(prepared)(list(prepared.dataset["test"]))
    assert batch["input_ids"].shape == (6, 4)


def test_collator_pads_to_multiple_and_with_tokenizer(tokenizer) -> None:
    collator = get_data_collator(tokenizer, pad_to_multiple_of=8)
    batch = collator([{"input_ids": [1, 2, 3], "labels": 1}, {"input_ids": [4], "labels": 0}])
    assert batch["input_ids"].tolist() == [[1, 2, 3] + [50256] * 5, [4] + [50256] * 7]
    assert batch["attention_mask"].sum(dim=1).tolist() == [3, 1]
    assert batch["labels"].dtype == torch.long


@pytest.mark.parametrize("text", EDGE_CASES)
def test_tokenizer_edge_cases_match_tiktoken(text: str, tokenizer, encoding) -> None:
    expected = encoding.encode_ordinary(text)
    assert tokenizer(text)["input_ids"] == expected
    assert tokenizer.encode(text) == expected
    assert tokenizer.decode(expected) == text


def test_tokenizer_survives_save_and_batches(tokenizer, encoding, tmp_path: Path) -> None:
    from transformers import AutoTokenizer

    assert len(tokenizer) == 50257
    assert tokenizer.pad_token == tokenizer.eos_token == "<|endoftext|>"
    assert tokenizer.pad_token_id == tokenizer.eos_token_id == 50256
    tokenizer.save_pretrained(tmp_path)
    reloaded = AutoTokenizer.from_pretrained(tmp_path)
    assert reloaded.split_special_tokens
    texts = [text for text in EDGE_CASES if text]
    batch = reloaded(texts, padding=True, truncation=True)
    width = max(len(encoding.encode_ordinary(text)) for text in texts)
    for text, ids, mask in zip(texts, batch["input_ids"], batch["attention_mask"], strict=True):
        expected = encoding.encode_ordinary(text)
        assert ids == expected + [50256] * (width - len(expected))
        assert mask == [1] * len(expected) + [0] * (width - len(expected))
    assert (
        reloaded("x " * 2000, truncation=True)["input_ids"]
        == encoding.encode_ordinary("x " * 2000)[:1024]
    )


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet=st.characters(exclude_categories=["Cs"]), max_size=40))
def test_tokenizer_matches_tiktoken_on_random_text(tokenizer, encoding, text: str) -> None:
    assert tokenizer(text)["input_ids"] == encoding.encode_ordinary(text)


def test_tokenize_map_is_cached(tmp_path: Path, cache_dir: str, tiktoken_available: None) -> None:
    path = write_frame(three_class_frame(10), tmp_path / "d.csv")
    args = DataArguments(dataset=str(path), data_cache_dir=cache_dir)
    first = prepare_data(args, context_length=32)
    second = prepare_data(args, context_length=32)
    for split in first.dataset:
        assert first.dataset[split]._fingerprint == second.dataset[split]._fingerprint
        assert first.dataset[split].cache_files == second.dataset[split].cache_files
        assert first.dataset[split].cache_files  # Arrow files in the cache, not only memory


# ---------------------------------------------------------------------------------------------
# One tokenizer: the saved one makes the training ids; the book's --context_length
# ---------------------------------------------------------------------------------------------


def test_training_ids_come_from_the_saved_tokenizer(
    tmp_path: Path, cache_dir: str, tokenizer, encoding
) -> None:
    from transformers import AutoTokenizer

    frame = three_class_frame(4)
    frame.loc[0, "text"] = "Win <|endoftext|> a prize <|endoftext|>"  # plain text, not id 50256
    path = write_frame(frame, tmp_path / "d.csv")
    args = DataArguments(dataset=str(path), balance=False, data_cache_dir=cache_dir)
    prepared = prepare_data(args, context_length=64)
    tokenizer.save_pretrained(tmp_path / "model")
    saved = AutoTokenizer.from_pretrained(tmp_path / "model")
    for ds in prepared.dataset.values():
        for example in ds:
            assert example["input_ids"] == saved(example["text"])["input_ids"]
            assert example["input_ids"] == encoding.encode_ordinary(example["text"])
    texts = [text for ds in prepared.dataset.values() for text in ds["text"]]
    assert frame.loc[0, "text"] in texts


# ---------------------------------------------------------------------------------------------
# A checkpoint's own tokenizer files (load_tokenizer)
# ---------------------------------------------------------------------------------------------


def test_checkpoint_bpe_files_give_tiktokens_ids(tmp_path: Path, encoding) -> None:
    """GPT-2's `vocab.json` + `merges.txt` as a GPT-2 checkpoint folder carries them (OpenAI's
    `encoder.json` / `vocab.bpe` under transformers' names); a literal '<|endoftext|>' stays
    text, as tiktoken's `encode_ordinary` (HF's GPT-2 tokenizer alone would give 50256)."""
    shutil.copy(GPT2_BPE / "encoder.json", tmp_path / "vocab.json")
    shutil.copy(GPT2_BPE / "vocab.bpe", tmp_path / "merges.txt")
    tokenizer = load_tokenizer(tmp_path, model_max_length=64)
    assert tokenizer(EDGE_CASES)["input_ids"] == encoding.encode_ordinary_batch(EDGE_CASES)
    assert (tokenizer.pad_token_id, tokenizer.padding_side) == (50256, "right")
    assert tokenizer.model_max_length == 64


def test_checkpoint_tokenizer_json_is_used_instead_of_gpt2s(tmp_path: Path) -> None:
    reference = save_small_bpe(tmp_path)
    reference.encode_special_tokens = True  # a literal '<|endoftext|>' is text here too
    tokenizer = load_tokenizer(tmp_path, model_max_length=64)
    texts = [*EDGE_CASES, " ".join(SPAM_WORDS), " ".join(HAM_WORDS)]
    assert tokenizer(texts)["input_ids"] == [e.ids for e in reference.encode_batch(texts)]
    assert len(tokenizer) == reference.get_vocab_size() < 50257
    assert tokenizer.pad_token_id == tokenizer.eos_token_id == 0  # its '<|endoftext|>'
    tokenizer.save_pretrained(tmp_path / "saved")  # what a trained model folder keeps
    assert load_tokenizer(tmp_path / "saved")(texts)["input_ids"] == tokenizer(texts)["input_ids"]


def test_folder_without_tokenizer_files_gets_gpt2s(tmp_path: Path, tokenizer) -> None:
    (tmp_path / "vocab.json").write_text("{}")  # half of the BPE pair is no tokenizer
    for folder in (tmp_path, None):
        fallback = load_tokenizer(folder, model_max_length=1024)
        assert fallback.backend_tokenizer.to_str() == tokenizer.backend_tokenizer.to_str()


def test_unreadable_tokenizer_file_is_named(tmp_path: Path) -> None:
    (tmp_path / "tokenizer.json").write_text("{oops")
    where = re.escape(str(tmp_path / "tokenizer.json"))
    with pytest.raises(ModelLoadError, match=rf"^{where}: not a readable tokenizer \("):
        load_tokenizer(tmp_path)


def test_tokenizer_larger_than_the_vocabulary_is_refused(tokenizer) -> None:
    check_tokenizer_fits(tokenizer, 50257, "gpt2")
    with pytest.raises(
        CheckpointError,
        match=r"^my-gpt2: the tokenizer has 50257 tokens, more than the model's vocabulary "
        r"\(300\); its ids would have no embedding",
    ):
        check_tokenizer_fits(tokenizer, 300, "my-gpt2")


@pytest.mark.parametrize(
    "context_length, expected, model_context",
    [("longest_training_example", None, 64), ("model_context_length", 32, 32), ("10", 10, 32)],
)
def test_context_length_pads_every_text_as_the_book(
    context_length: str,
    expected: int | None,
    model_context: int,
    tmp_path: Path,
    cache_dir: str,
    encoding,
) -> None:
    frame = three_class_frame(6)
    frame.loc[0, "text"] = "a long text " * 20  # 60 tokens
    path = write_frame(frame, tmp_path / "d.csv")
    args = DataArguments(
        dataset=str(path), context_length=context_length, balance=False, data_cache_dir=cache_dir
    )
    prepared = prepare_data(args, context_length=model_context)
    train_lengths = [len(encoding.encode_ordinary(t)) for t in prepared.dataset["train"]["text"]]
    width = expected or max(train_lengths)
    assert prepared.max_length == width
    assert prepared.report.padding == context_length
    for ds in prepared.dataset.values():
        for example in ds:
            ids = encoding.encode_ordinary(example["text"])[:width]  # truncated, as the book
            assert example["input_ids"] == ids + [50256] * (width - len(ids))
            assert example["attention_mask"] == [1] * len(ids) + [0] * (width - len(ids))
            assert example["length"] == len(ids)


def test_context_length_longer_than_the_model(tmp_path: Path, cache_dir: str) -> None:
    path = write_frame(three_class_frame(5), tmp_path / "d.csv")
    args = DataArguments(dataset=str(path), context_length="100", data_cache_dir=cache_dir)
    with pytest.raises(UsageError, match=r"--context_length 100: longer than the model's context"):
        prepare_data(args, context_length=64)


def test_longest_training_example_longer_than_the_model_is_refused(
    tmp_path: Path, cache_dir: str, encoding
) -> None:
    """As the book's script asserts: the longest training text must fit the model's context;
    never cut silently. An explicit --max_length within the context truncates it as asked."""
    frame = three_class_frame(4)
    frame["text"] = "a long text " * 20  # 60 tokens, every text (so one is in train)
    path = write_frame(frame, tmp_path / "d.csv")
    longest = len(encoding.encode_ordinary(frame.loc[0, "text"]))
    args = DataArguments(
        dataset=str(path), context_length="longest_training_example", data_cache_dir=cache_dir
    )
    message = (
        f"--context_length longest_training_example: the longest training text has {longest} "
        "tokens, more than the model's context length (32); pass --context_length "
        "model_context_length (or --max_length 32) to truncate texts to it"
    )
    with pytest.raises(UsageError, match=f"^{re.escape(message)}$"):
        prepare_data(args, context_length=32)
    args.max_length = 32
    assert prepare_data(args, context_length=32).max_length == 32


def test_collator_is_data_collator_with_padding(tokenizer) -> None:
    from transformers import DataCollatorWithPadding

    collator = get_data_collator(tokenizer)
    assert isinstance(collator, DataCollatorWithPadding)
    assert collator.tokenizer.padding_side == "right"
    assert collator.tokenizer.pad_token_id == 50256
