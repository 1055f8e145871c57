"""The bulk path (hf_spam.inference.bulk, hf_spam.inference.files): results equal to transformers'
`pipeline("text-classification", top_k=None)`, input order kept, input read lazily, output
written atomically, and one-line errors."""

from __future__ import annotations

import json
import random

import pytest
from helpers import random_model
from transformers import pipeline

from hf_spam.cli import main
from hf_spam.errors import DataError, UsageError
from hf_spam.inference.bulk import classify_bulk, length_sorted_batches
from hf_spam.inference.files import iter_texts, write_predictions
from hf_spam.inference.load import load_classifier, read_texts

WORDS = ["WIN", "free", "prize", "call", "now", "see", "you", "mum", "ok", "£1000", "émoji 🙂"]


def mixed_texts(n: int = 90, seed: int = 0) -> list[str]:
    """Empty, short, and longer than the tiny model's 64-token context, in no length order,
    with a literal '<|endoftext|>' (plain text to the tokenizer, never the control token)."""
    rng = random.Random(seed)
    texts = [" ".join(rng.choice(WORDS) for _ in range(rng.randint(1, 120))) for _ in range(n)]
    texts[3] = ""
    texts[10] = "hello <|endoftext|> world"
    texts[11] = "<|endoftext|>"
    texts[-1] = ""
    return texts


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory, tiktoken_available):
    return random_model(tmp_path_factory.mktemp("bulk") / "model")


@pytest.fixture(scope="module")
def multi_label_model(tmp_path_factory, tiktoken_available):
    folder = random_model(
        tmp_path_factory.mktemp("bulk") / "multi", {0: "a", 1: "b", 2: "c"}, seed=1
    )
    config = json.loads((folder / "config.json").read_text())
    config["problem_type"] = "multi_label_classification"
    (folder / "config.json").write_text(json.dumps(config))
    return folder


@pytest.fixture(scope="module")
def transformers_gpt2(tmp_path_factory, tiny_checkpoint, tiktoken_available):
    """transformers' own GPT2ForSequenceClassification (it finds the last token from the pad id),
    with hf_spam's saved tokenizer."""
    from transformers import GPT2ForSequenceClassification

    from hf_spam.data import get_tokenizer

    folder = tmp_path_factory.mktemp("bulk") / "gpt2"
    model = GPT2ForSequenceClassification.from_pretrained(
        tiny_checkpoint, num_labels=2, pad_token_id=50256
    )
    model.save_pretrained(folder)
    get_tokenizer(64).save_pretrained(folder)
    return folder


def assert_equal_to_pipeline(folder, texts, **bulk_kwargs):
    reference = pipeline("text-classification", model=str(folder), top_k=None, device="cpu")
    expected = reference(texts, truncation=True)  # one text at a time: no padding anywhere
    classifier = load_classifier(folder)
    got = list(classify_bulk(classifier.model, classifier.tokenizer, iter(texts), **bulk_kwargs))
    assert [p.text for p in got] == texts
    for prediction, output in zip(got, expected, strict=True):
        assert prediction.label == output[0]["label"]
        assert prediction.score == pytest.approx(output[0]["score"], abs=1e-5)
        by_label = {item["label"]: item["score"] for item in output}
        assert prediction.scores == pytest.approx(by_label, abs=1e-5)
        assert list(prediction.scores) == list(classifier.model.config.id2label.values())


@pytest.mark.parametrize(("batch_size", "window_size"), [(1, 7), (16, 32), (64, 1000)])
def test_equal_to_pipeline(tiny_model, batch_size, window_size):
    assert_equal_to_pipeline(
        tiny_model, mixed_texts(), batch_size=batch_size, window_size=window_size
    )


def test_equal_to_pipeline_multi_label_uses_sigmoid(multi_label_model):
    assert_equal_to_pipeline(multi_label_model, mixed_texts(30), batch_size=8, window_size=16)
    classifier = load_classifier(multi_label_model)
    scores = next(classify_bulk(classifier.model, classifier.tokenizer, ["hi"])).scores
    assert sum(scores.values()) != pytest.approx(1.0)  # independent sigmoids, not a softmax


def test_equal_to_pipeline_transformers_gpt2(transformers_gpt2):
    texts = [text for text in mixed_texts(40) if text]  # GPT-2 itself cannot run no tokens
    assert_equal_to_pipeline(transformers_gpt2, texts, batch_size=8, window_size=16)


def test_length_sorted_batches_cover_every_index_once():
    lengths = [5, 0, 3, 64, 0, 1, 3, 9, 2, 0, 7]
    batches = length_sorted_batches(lengths, 3)
    assert sorted(i for batch in batches for i in batch) == list(range(len(lengths)))
    assert all(len(batch) <= 3 for batch in batches)
    for batch in batches:  # empty texts never share a batch with others
        assert all(lengths[i] == 0 for i in batch) or all(lengths[i] > 0 for i in batch)
    flat = [lengths[i] for batch in batches for i in batch]
    assert flat == sorted(flat)


def test_order_restored_when_lengths_run_backwards(tiny_model):
    classifier = load_classifier(tiny_model)
    texts = [" ".join(["word"] * n) + f" {n}" for n in range(60, 0, -1)]  # longest first
    got = classify_bulk(classifier.model, classifier.tokenizer, texts, batch_size=4)
    assert [p.text for p in got] == texts


def test_input_is_read_lazily_and_output_streamed(tiny_model, tmp_path):
    classifier = load_classifier(tiny_model)
    pulled = 0

    def texts():
        nonlocal pulled
        for n in range(100):
            pulled += 1
            yield f"message {n}"

    seen_by_writer = []

    def observed(predictions):
        for prediction in predictions:
            seen_by_writer.append(pulled)
            yield prediction

    stream = classify_bulk(
        classifier.model, classifier.tokenizer, texts(), batch_size=4, window_size=8
    )
    out = write_predictions(observed(stream), tmp_path / "out.jsonl")
    assert seen_by_writer[0] == 8  # the first prediction reached the writer after one window
    assert seen_by_writer[-1] == 100
    assert len(out.read_text().splitlines()) == 100


def test_failure_half_way_leaves_no_output(tiny_model, tmp_path):
    classifier = load_classifier(tiny_model)

    def texts():
        for n in range(50):
            if n == 20:
                raise DataError("input.txt, line 21: not UTF-8 text (binary input?)")
            yield f"message {n}"

    for name, old in (("new.jsonl", None), ("old.csv", "kept\n")):
        out = tmp_path / name
        if old is not None:
            out.write_text(old)
        stream = classify_bulk(
            classifier.model, classifier.tokenizer, texts(), batch_size=4, window_size=8
        )
        with pytest.raises(DataError, match="line 21"):
            write_predictions(stream, out)
        assert (out.read_text() if out.exists() else None) == old
    assert sorted(p.name for p in tmp_path.iterdir()) == ["old.csv"]  # no temporary file left


def test_bad_arguments_and_texts_give_one_line(tiny_model):
    classifier = load_classifier(tiny_model)
    model, tokenizer = classifier.model, classifier.tokenizer
    with pytest.raises(UsageError, match=r"^--batch_size must be a positive integer, got 0$"):
        next(classify_bulk(model, tokenizer, ["a"], batch_size=0))
    with pytest.raises(UsageError, match=r"^--window_size must be a positive integer, got -1$"):
        next(classify_bulk(model, tokenizer, ["a"], window_size=-1))
    with pytest.raises(DataError, match=r"^text 3: expected a string, got NoneType$"):
        list(classify_bulk(model, tokenizer, ["a", "b", None]))


@pytest.mark.parametrize(
    ("name", "content"),
    [
        ("quoted.csv", 'id,text\n1,"a, quoted ""text"""\n2,\n\n3,"two\nlines"\n4\n'),
        ("tabs.tsv", "text\tlabel\nhello there\tham\n\tspam\n"),
        ("records.jsonl", '{"text": "a"}\n\n{"text": null}\n{"text": "b", "x": 1}\n{"x": 2}\n'),
        # A byte order mark (utf-8-sig, as Excel saves CSV) is not part of the first column.
        ("bom.csv", "\ufefftext,label\nhello,ham\n"),
        ("bom.tsv", "\ufefftext\tlabel\nhello\tham\n"),
        ("bom.jsonl", '\ufeff{"text": "a"}\n{"text": "b"}\n'),
        ("bom.txt", "\ufeffhello\nthere\n"),
    ],
)
def test_lazy_reader_equals_datasets_reader(tmp_path, name, content):
    """`iter_texts` (csv module, one JSON record per line) against `read_texts`
    (`datasets.load_dataset`, pandas' CSV rules)."""
    path = tmp_path / name
    path.write_text(content, encoding="utf-8")
    assert list(iter_texts(path)) == read_texts(path)
    assert not any(text.startswith("\ufeff") for text in read_texts(path))


def test_lazy_reader_errors(tmp_path):
    table = tmp_path / "inbox.csv"
    table.write_text("id,body\n1,hi\n")
    with pytest.raises(DataError, match=r"inbox.csv: no column 'text' \(found 'id', 'body'\)"):
        iter_texts(table)  # at once, before any text is asked for
    extra = tmp_path / "extra.csv"
    extra.write_text("text,label\na,b\nc,d,e\n")
    with pytest.raises(DataError, match=r"extra.csv: cannot be read as CSV \(line 3: expected 2"):
        list(iter_texts(extra))
    binary = tmp_path / "binary.csv"
    binary.write_bytes(b"text\nfine\n\xff\xfe\n")
    with pytest.raises(DataError, match=r"binary.csv, line 3: not UTF-8 text"):
        list(iter_texts(binary))
    with pytest.raises(DataError, match=r"missing.txt: file not found"):
        iter_texts(tmp_path / "missing.txt")
    with pytest.raises(DataError, match=rf"^{tmp_path}: is a folder, expected a file of texts$"):
        iter_texts(tmp_path)


def test_predict_bulk_equals_predict_through_pipeline(tiny_model, tmp_path, capsys):
    source = tmp_path / "in.txt"
    source.write_text("\n".join(text or "." for text in mixed_texts(70)) + "\n")
    outputs = {}
    for flag in ("", "--use_pipeline"):
        out = tmp_path / f"out{flag}.jsonl"
        argv = ["predict", "--model", str(tiny_model), "--input", str(source), "--output", str(out)]
        assert main([*argv, *([flag] if flag else [])]) == 0
        assert "Wrote 70 predictions" in capsys.readouterr().out
        outputs[flag] = [json.loads(line) for line in out.read_text().splitlines()]
    for bulk, piped in zip(outputs[""], outputs["--use_pipeline"], strict=True):
        assert (bulk["text"], bulk["label"]) == (piped["text"], piped["label"])
        assert bulk["scores"] == pytest.approx(piped["scores"], abs=1e-5)


def test_predict_window_size_flag_is_checked(tiny_model, capsys):
    assert main(["predict", "--model", str(tiny_model), "--window_size", "0", "hi"]) == 2
    assert "--window_size must be a positive integer, got 0" in capsys.readouterr().err
