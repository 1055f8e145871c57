"""Helpers of the data-pipeline tests: small labelled files in every supported format."""

from __future__ import annotations

from pathlib import Path

import datasets
import pandas as pd

SMS_SPAM_FILENAME = "SMSSpamCollection"
THREE_CLASSES = ("neg", "neu", "pos")


def texts_of(dataset: datasets.Dataset) -> list[str]:
    return list(dataset["text"])


def write_sms(path: Path, rows: list[tuple[str, str]], trailer: str = "\n") -> Path:
    path.write_text("\n".join(f"{label}\t{text}" for label, text in rows) + trailer, "utf-8")
    return path


def three_class_frame(per_class: int = 10, label_values=THREE_CLASSES) -> pd.DataFrame:
    """Texts with commas, quotes, tabs and newlines that naive parsers mangle."""
    rows = []
    for value, name in zip(label_values, THREE_CLASSES, strict=True):
        for i in range(per_class):
            rows.append({"text": f'{name} "quoted", text\t{i}\nline two', "label": value})
    return pd.DataFrame(rows)


def write_frame(frame: pd.DataFrame, path: Path) -> Path:
    if path.suffix == ".csv":
        frame.to_csv(path, index=False)
    elif path.suffix == ".tsv":
        frame.to_csv(path, index=False, sep="\t")
    elif path.suffix == ".jsonl":
        frame.to_json(path, orient="records", lines=True, force_ascii=False)
    else:
        frame.to_parquet(path, index=False)
    return path


def assert_nothing_cached(cache_dir: str) -> None:
    assert not list(Path(cache_dir).rglob("*.arrow"))


SPAM_WORDS = ["WIN", "free", "prize", "call", "now", "txt", "claim", "cash", "urgent", "offer"]
HAM_WORDS = ["see", "you", "at", "home", "later", "mum", "dinner", "ok", "thanks", "tomorrow"]


def write_spam_fixture(path: Path, rows: int = 160, seed: int = 0) -> Path:
    """A small CSV of synthetic ham/spam texts (columns text,label) that a tiny model can learn."""
    import csv
    import random

    rng = random.Random(seed)
    with path.open("w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(["text", "label"])
        for i in range(rows):
            label = "spam" if i % 2 else "ham"
            words = SPAM_WORDS if label == "spam" else HAM_WORDS
            text = " ".join(rng.choice(words) for _ in range(rng.randint(3, 12)))
            writer.writerow([text, label])
    return path
