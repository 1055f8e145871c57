"""Tests of `DataArguments`: every flag parsed once, bad values named in a `UsageError`."""

from __future__ import annotations

import dataclasses
from fractions import Fraction

import pytest

from hf_spam.data import DataArguments, UsageError


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (
            {"split_fractions": "0.7,0.2,0.2"},
            r"--split_fractions 0\.7,0\.2,0\.2: expected three positive numbers summing to 1",
        ),
        ({"split_fractions": "0.5,0.5,0.5"}, r"--split_fractions 0\.5,0\.5,0\.5: expected three"),
        ({"split_fractions": "0.8,0.2"}, r"--split_fractions 0\.8,0\.2: expected three"),
        ({"split_fractions": "a,b,c"}, r"--split_fractions a,b,c: expected three"),
        ({"padding": "max_length"}, "--padding max_length: expected one of dynamic, longest_train"),
        ({"empty_text": "keep"}, "--empty_text keep: expected one of drop, error"),
        ({"split": "random"}, "--split random: expected one of book, bonus, clean"),
        ({"labels": "spam"}, "--labels spam: expected two or more distinct class names"),
        ({"labels": "a,a"}, "--labels a,a: expected two or more distinct"),
        ({"max_length": 0}, "--max_length 0: expected at least 1"),
        ({"max_train_samples": 0}, "--max_train_samples 0: expected at least 1"),
        ({"max_eval_samples": -1}, "--max_eval_samples -1: expected at least 1"),
        ({"context_length": "longest"}, "--context_length longest: expected longest_training_"),
        ({"context_length": "0"}, "--context_length 0: expected"),
        (
            {"context_length": "64", "padding": "longest_train"},
            "--padding longest_train conflicts with --context_length 64",
        ),
        ({"text_column": "x", "label_column": "x"}, "--text_column and --label_column are both"),
    ],
)
def test_bad_arguments(kwargs: dict, message: str) -> None:
    with pytest.raises(UsageError, match=message):
        DataArguments(**kwargs)


def test_flags_are_parsed_once_into_typed_attributes() -> None:
    args = DataArguments(split_fractions="0.5, 1/4, 0.25", labels="ham, spam")
    assert args.fractions == {
        "train": Fraction(1, 2),
        "validation": Fraction(1, 4),
        "test": Fraction(1, 4),
    }
    assert args.label_names == ("ham", "spam")
    assert DataArguments().pad_to is None  # dynamic padding
    assert DataArguments(padding="longest_train").pad_to == "longest_training_example"
    assert DataArguments(context_length="model_context_length").pad_to == "model_context_length"
    assert DataArguments(context_length="120").pad_to == 120
    changed = dataclasses.replace(args, labels="a,b,c")  # re-parsed on replace
    assert changed.label_names == ("a", "b", "c")


def test_arguments_parse_beside_training_arguments() -> None:
    from transformers import HfArgumentParser, TrainingArguments

    parser = HfArgumentParser((DataArguments, TrainingArguments))
    data_args, training_args = parser.parse_args_into_dataclasses(
        [
            "--output_dir",
            "x",
            "--no_balance",
            "--padding",
            "longest_train",
            "--split_seed",
            "7",
            "--split",
            "clean",
            "--max_train_samples",
            "10",
        ]
    )
    assert (data_args.balance, data_args.padding, data_args.seed) == (False, "longest_train", 7)
    assert (data_args.split, data_args.max_train_samples) == ("clean", 10)
    assert data_args.pad_to == "longest_training_example"
    assert training_args.seed == 42
