"""The `hf-spam` command's single error path: bad input across every command gives exactly one
line `error: ...` on stderr naming the file/row/column/key/flag, exit status 2 for bad usage and
1 for a failure, no traceback, and nothing left behind where the output would have gone.

Commands run in-process through `hf_spam.cli.main` (fast); a few run in a real process to prove
the exit codes, `--debug` and a file-size limit.
"""

from __future__ import annotations

import errno
import io
import json
import os
import re
import resource
import shlex
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest
import torch
from helpers import ROOT, random_model, save_gpt2_checkpoint, write_spam_fixture

from hf_spam import GPTConfig, GPTForSequenceClassification, cli
from hf_spam.cli import describe, main
from hf_spam.data import DataArguments, prepare_data
from hf_spam.errors import CheckpointError, DataError, ModelLoadError, UsageError
from hf_spam.files import FINAL_STAGING
from hf_spam.inference.load import InferenceArguments, classify, load_classifier, read_texts
from hf_spam.model.weights import load_openai_gpt2

USAGE, FAILURE = 2, 1
_PROGRESS = re.compile(r"\r|\d+(it|examples)/s\]")


@dataclass
class Paths:
    """Everything a case may point at, built once per module."""

    root: Path
    model: Path
    checkpoint: Path
    csv: Path

    def copy_model(self, name: str, change: Callable[[Path], object] | None = None) -> Path:
        """A copy of the tiny classifier, broken by `change` (the shared one stays intact)."""
        folder = self.root / "models" / name
        if not folder.exists():
            shutil.copytree(self.model, folder)
            if change:
                change(folder)
        return folder

    def file(self, name: str, content: str | bytes) -> Path:
        path = self.root / "files" / name
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, bytes):
            path.write_bytes(content)
        else:
            path.write_text(content, encoding="utf-8")
        return path

    def busy(self, name: str) -> Path:
        """A non-empty folder that must survive untouched."""
        folder = self.root / "busy" / name
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "keep.txt").write_text("mine")
        return folder

    def out(self, name: str) -> Path:
        return self.root / "out" / name


@pytest.fixture(scope="module")
def paths(tmp_path_factory, tiktoken_available) -> Paths:
    root = tmp_path_factory.mktemp("cli")
    checkpoint = root / "gpt2"
    save_gpt2_checkpoint(checkpoint)
    csv = write_spam_fixture(root / "spam.csv", rows=12)
    return Paths(root, random_model(root / "model"), checkpoint, csv)


# --------------------------------------------------------------------------------------------
# Ways to break a model folder or a checkpoint
# --------------------------------------------------------------------------------------------


def _edit_config(**changes):
    def change(folder: Path) -> None:
        config = json.loads((folder / "config.json").read_text())
        config.update(changes)
        (folder / "config.json").write_text(json.dumps(config))

    return change


def _write(name: str, content: str | bytes):
    def change(folder: Path) -> None:
        path = folder / name
        path.write_bytes(content) if isinstance(content, bytes) else path.write_text(content)

    return change


def _truncate(name: str, keep: int):
    def change(folder: Path) -> None:
        path = folder / name
        path.write_bytes(path.read_bytes()[:keep])

    return change


def _edit_weights(change):
    """Rewrite model.safetensors with `change(tensors)` applied: a tensor dropped, added or
    reshaped, as a hand-made or merged checkpoint might be."""

    def edit(folder: Path) -> None:
        from safetensors.torch import load_file, save_file

        tensors = load_file(folder / "model.safetensors")
        change(tensors)
        save_file(tensors, folder / "model.safetensors")

    return edit


def _only_pickle(folder: Path) -> None:
    (folder / "model.safetensors").rename(folder / "pytorch_model.bin")


def _index_without_weight_map(folder: Path) -> None:
    (folder / "model.safetensors.index.json").write_text('{"metadata": {}}')
    (folder / "model.safetensors").unlink()


def _stopped_while_saving(folder: Path) -> None:
    """A run killed while moving its final files into place: some arrived, the rest (and the
    card) are still in the staging folder."""
    staging = folder / f"{FINAL_STAGING}-k2x9.tmp"
    staging.mkdir()
    (folder / "tokenizer.json").rename(staging / "tokenizer.json")


def _checkpoint_copy(p: Paths, name: str, change: Callable[[Path], object]) -> Path:
    folder = p.root / "checkpoints" / name
    if not folder.exists():
        shutil.copytree(p.checkpoint, folder)
        change(folder)
    return folder


THREE_LABELS = {"id2label": {"0": "a", "1": "b", "2": "c"}, "label2id": {"a": 0, "b": 1, "c": 2}}
GAP_LABELS = {"id2label": {"0": "ham", "2": "spam"}, "label2id": {"ham": 0, "spam": 2}}


def _edit_tokenizer(edit: Callable[[dict], object]):
    def change(folder: Path) -> None:
        tokenizer = json.loads((folder / "tokenizer.json").read_text())
        edit(tokenizer)
        (folder / "tokenizer.json").write_text(json.dumps(tokenizer))

    return change


def _extra_token(tokenizer: dict) -> None:
    """One added token beyond GPT-2's 50257: a tokenizer larger than the model's vocabulary."""
    extra = dict(tokenizer["added_tokens"][0], id=50257, content="<|extra|>")
    tokenizer["added_tokens"].append(extra)


def _empty_vocabulary(tokenizer: dict) -> None:
    tokenizer["model"]["vocab"] = {"<|endoftext|>": 50256}
    tokenizer["model"]["merges"] = []


# --------------------------------------------------------------------------------------------
# The cases: (id, exit status, text the message must hold, argv builder)
# A builder returns (argv, output location that must not appear, stdin bytes or None).
# --------------------------------------------------------------------------------------------


def _three_labels_with_threshold(p: Paths) -> Path:
    """A real 3-class classifier whose config.json holds a (binary-only) decision threshold."""
    folder = p.root / "models" / "three-threshold"
    if not folder.exists():
        random_model(folder, id2label={0: "a", 1: "b", 2: "c"})
        _edit_config(decision_threshold=0.5)(folder)
    return folder


def predict(*argv, out: Path | None = None, stdin: bytes | None = None):
    tail = ["--output", out] if out else []
    return ["predict", *argv, *tail], out, stdin


def predict_model(p: Paths, model: Path, name: str):
    return predict("--model", model, "hi there", out=p.out(f"{name}.jsonl"))


CASES = [
    # --- predict: flags
    ("predict-unknown-flag", USAGE, "unknown flag --batchsize; did you mean --batch_size?",
     lambda p: predict("--model", p.model, "--batchsize", "3", "hi")),
    ("predict-batch-size-0", USAGE, "--batch_size must be a positive integer, got 0",
     lambda p: predict("--model", p.model, "--batch_size", "0", "hi", out=p.out("b0.jsonl"))),
    ("predict-batch-size-negative", USAGE, "--batch_size must be a positive integer, got -2",
     lambda p: predict("--model", p.model, "--batch_size", "-2", "hi")),
    ("predict-batch-size-not-int", USAGE, "--batch_size/--batch-size: invalid int value: 'x'",
     lambda p: predict("--model", p.model, "--batch_size", "x", "hi")),
    ("predict-device-warp9", USAGE, "--device 'warp9' is not available here; devices: cpu",
     lambda p: predict("--model", p.model, "--device", "warp9", "hi", out=p.out("d.jsonl"))),
    ("predict-device-missing-gpu", USAGE, "--device 'cuda:7' is not available",
     lambda p: predict("--model", p.model, "--device", "cuda:7", "hi")),
    ("predict-output-format", USAGE, "--output", lambda p: predict(
        "--model", p.model, "hi", out=p.out("predictions.xlsx"))),
    ("predict-texts-and-input", USAGE, "give texts as arguments or --input, not both",
     lambda p: predict("--model", p.model, "--input", p.csv, "hi")),
    # --- predict: input files
    ("predict-input-missing", FAILURE, "missing.txt: file not found",
     lambda p: predict("--model", p.model, "--input", p.root / "missing.txt",
                       out=p.out("m.jsonl"))),
    ("predict-input-folder", FAILURE, "inbox: is a folder, expected a file of texts",
     lambda p: predict("--model", p.model, "--input", p.busy("inbox"), out=p.out("f.jsonl"))),
    ("predict-input-no-column", FAILURE, "inbox.csv: no column 'text' (found 'id', 'body')",
     lambda p: predict("--model", p.model, "--input", p.file("inbox.csv", "id,body\n1,hi\n"),
                       out=p.out("c.jsonl"))),
    ("predict-csv-extra-field", FAILURE, "extra.csv: cannot be read as CSV",
     lambda p: predict("--model", p.model, "--input",
                       p.file("extra.csv", "text,label\na,b\nc,d,e\n"))),
    ("predict-jsonl-bad-line", FAILURE, "bad.jsonl, line 2: not valid JSON",
     lambda p: predict("--model", p.model, "--input",
                       p.file("bad.jsonl", '{"text": "a"}\n{oops\n'), out=p.out("j.jsonl"))),
    ("predict-jsonl-not-object", FAILURE, "list.jsonl, line 1: expected a JSON object",
     lambda p: predict("--model", p.model, "--input", p.file("list.jsonl", "[1, 2]\n"))),
    ("predict-jsonl-number-text", FAILURE, "num.jsonl, row 1: column 'text' holds int",
     lambda p: predict("--model", p.model, "--input", p.file("num.jsonl", '{"text": 3}\n'))),
    ("predict-binary-file", FAILURE, "binary.txt, line 2: not UTF-8 text",
     lambda p: predict("--model", p.model, "--input",
                       p.file("binary.txt", b"fine\n\xff\xfe\x00\x81\n"))),
    ("predict-binary-stdin", FAILURE, "stdin, line 2: not UTF-8 text",
     lambda p: predict("--model", p.model, stdin=b"fine\n\xff\xfe\x00\x81\n")),
    ("predict-empty-input", FAILURE, "no texts in", lambda p: predict(
        "--model", p.model, "--input", p.file("empty.txt", "\n\n"), out=p.out("e.jsonl"))),
    # --- predict: model folders
    ("predict-model-missing", FAILURE, "no such model folder",
     lambda p: predict_model(p, p.root / "no" / "model", "missing")),
    ("predict-model-empty-folder", FAILURE, "missing config.json",
     lambda p: predict_model(p, p.busy("not-a-model"), "empty")),
    ("predict-model-pickle-only", FAILURE, "pytorch_model.bin is pickled and not read",
     lambda p: predict_model(p, p.copy_model("pickle", _only_pickle), "pickle")),
    ("predict-config-invalid-json", FAILURE, "config.json, line 1, column 2",
     lambda p: predict_model(p, p.copy_model("badcfg", _write("config.json", "{bad")), "cfg")),
    ("predict-config-not-object", FAILURE, "config.json: expected a JSON object",
     lambda p: predict_model(p, p.copy_model("listcfg", _write("config.json", "[]")), "lst")),
    ("predict-unknown-model-type", FAILURE, "config.json: unknown model_type 'warp'",
     lambda p: predict_model(p, p.copy_model("mtype", _edit_config(model_type="warp")), "mt")),
    ("predict-labels-do-not-match-weights", FAILURE,
     "3 labels (a, b, c) but the weights' out_head.weight has 2 rows",
     lambda p: predict_model(p, p.copy_model("labels", _edit_config(**THREE_LABELS)), "lab")),
    ("predict-config-deeper-than-weights", FAILURE,
     "config.json: n_layers is 100000 but the weights have 2; the config does not belong",
     lambda p: predict_model(p, p.copy_model("deep", _edit_config(n_layers=100_000)), "deep")),
    ("predict-config-wider-than-weights", FAILURE,
     "config.json: emb_dim is 4000000 but the weights have 32",
     lambda p: predict_model(p, p.copy_model("wide", _edit_config(emb_dim=4_000_000)), "wide")),
    ("predict-weights-lack-a-tensor", FAILURE,
     "model.safetensors: lacks tensor gpt.trf_blocks.1.att.W_query.weight, which the model that "
     "config.json describes needs",
     lambda p: predict_model(p, p.copy_model("lack", _edit_weights(
         lambda t: t.pop("gpt.trf_blocks.1.att.W_query.weight"))), "lack")),
    ("predict-weights-have-an-extra-tensor", FAILURE,
     "model.safetensors: has tensor gpt.extra.weight, which the model that config.json "
     "describes does not have",
     lambda p: predict_model(p, p.copy_model("extra", _edit_weights(
         lambda t: t.update({"gpt.extra.weight": torch.zeros(2)}))), "extra")),
    ("predict-weights-tensor-reshaped", FAILURE,
     "model.safetensors: tensor gpt.pos_emb.weight has shape (8, 32) but the model that "
     "config.json describes needs",
     lambda p: predict_model(p, p.copy_model("shape", _edit_weights(
         lambda t: t.update({"gpt.pos_emb.weight": torch.zeros(8, 32)}))), "shape")),
    ("predict-label-ids-with-a-gap", FAILURE,
     "config.json: id2label must number the labels 0 to 1, got ids 0, 2",
     lambda p: predict_model(p, p.copy_model("gap", _edit_config(**GAP_LABELS)), "gap")),
    ("predict-tokenizer-larger-than-vocabulary", FAILURE,
     "tokenizer.json: 50258 tokens, more than the model's vocabulary of 50257",
     lambda p: predict_model(p, p.copy_model("bigtok", _edit_tokenizer(_extra_token)), "bt")),
    ("predict-tokenizer-gives-no-tokens", FAILURE,
     "tokenizer.json: turns ordinary text into no tokens",
     lambda p: predict_model(p, p.copy_model("notok", _edit_tokenizer(_empty_vocabulary)), "nt")),
    ("predict-tokenizer-corrupted", FAILURE, "tokenizer.json, line 1",
     lambda p: predict_model(p, p.copy_model("tok", _write("tokenizer.json", '{"v": ')), "tok")),
    ("predict-weights-truncated", FAILURE, "model.safetensors: not a readable safetensors file",
     lambda p: predict_model(p, p.copy_model("trunc", _truncate("model.safetensors", 100)), "t")),
    ("predict-weights-empty", FAILURE, "model.safetensors: not a readable safetensors file",
     lambda p: predict_model(p, p.copy_model("empty", _write("model.safetensors", b"")), "e0")),
    ("predict-index-without-weight-map", FAILURE,
     "model.safetensors.index.json: no 'weight_map'",
     lambda p: predict_model(p, p.copy_model("index", _index_without_weight_map), "idx")),
    ("predict-model-stopped-while-saving", FAILURE, "its run was stopped while saving it",
     lambda p: predict_model(p, p.copy_model("stopped", _stopped_while_saving), "stopped")),
    ("predict-hub-offline", FAILURE, "pass a local path",
     lambda p: predict_model(p, Path("nobody/no-such-model"), "hub")),
    # --- evaluate
    ("evaluate-bad-split", USAGE, "--eval_split/--eval-split: invalid choice: 'bogus'",
     lambda p: (["evaluate", "--model", p.model, "--output_dir", p.out("ev1"),
                 "--eval_split", "bogus"], p.out("ev1"), None)),
    ("evaluate-negative-errors", USAGE, "--errors must be 0 or more",
     lambda p: (["evaluate", "--model", p.model, "--output_dir", p.out("ev2"),
                 "--errors", "-1"], p.out("ev2"), None)),
    ("evaluate-batch-size-0", USAGE, "--batch_size", lambda p: (
        ["evaluate", "--model", p.model, "--output_dir", p.out("ev3"), "--batch_size", "0"],
        p.out("ev3"), None)),
    ("evaluate-busy-output", USAGE, "exists and is not empty", lambda p: (
        ["evaluate", "--model", p.model, "--output_dir", p.busy("ev"), "--dataset", p.csv],
        None, None)),
    ("evaluate-weights-truncated", FAILURE, "model.safetensors: not a readable", lambda p: (
        ["evaluate", "--model", p.copy_model("trunc", _truncate("model.safetensors", 100)),
         "--dataset", p.csv, "--eval_split", "all", "--output_dir", p.out("ev4")], p.out("ev4"), None)),
    ("evaluate-compare-missing", FAILURE, "no such model folder", lambda p: (
        ["evaluate", "--model", p.model, "--compare", p.root / "no" / "other", "--dataset",
         p.csv, "--eval_split", "all", "--output_dir", p.out("ev5")], p.out("ev5"), None)),
    ("evaluate-data-no-column", FAILURE, "no column 'text'", lambda p: (
        ["evaluate", "--model", p.model, "--eval_split", "all", "--output_dir", p.out("ev6"),
         "--dataset", p.file("body.csv", "body,label\nhi,ham\nwin,spam\n")], p.out("ev6"), None)),
    ("evaluate-unknown-label", FAILURE, "unknown label 'phish'", lambda p: (
        ["evaluate", "--model", p.model, "--eval_split", "all", "--output_dir", p.out("ev7"),
         "--dataset", p.file("phish.csv", "text,label\nhi,ham\nclick,phish\n")],
        p.out("ev7"), None)),
    # --- calibrate
    ("calibrate-two-goals", USAGE, "--target_precision and --cost_ratio: give one goal", lambda p: (
        ["calibrate", "--model", p.model, "--target_precision", "0.9", "--cost_ratio", "3"],
        None, None)),
    ("calibrate-precision-above-1", USAGE, "--target_precision must be in (0, 1], got 1.5",
     lambda p: (["calibrate", "--model", p.model, "--target_precision", "1.5"], None, None)),
    ("calibrate-negative-cost", USAGE, "--cost_ratio must be > 0, got -2.0",
     lambda p: (["calibrate", "--model", p.model, "--cost_ratio", "-2"], None, None)),
    ("calibrate-hub-id", USAGE, "--model nobody/model: not a local model folder",
     lambda p: (["calibrate", "--model", "nobody/model"], None, None)),
    ("calibrate-threshold-three-labels", USAGE, "--cost_ratio needs a binary model (2 labels); "
     "this one has 3", lambda p: (["calibrate", "--model", p.copy_model(
         "three-cal", _edit_config(**THREE_LABELS)), "--cost_ratio", "2"], None, None)),
    ("calibrate-config-threshold-three-labels", FAILURE, "decision_threshold needs a binary model",
     lambda p: predict_model(p, _three_labels_with_threshold(p), "thr3")),
    # --- convert
    ("convert-one-label", USAGE, "--labels 'spam': give at least two class names", lambda p: (
        ["convert", "--source", p.checkpoint, "--output_dir", p.out("cv1"), "--head",
         "classification", "--labels", "spam"], p.out("cv1"), None)),
    ("convert-duplicate-labels", USAGE, "--labels 'ham,ham': ham given twice", lambda p: (
        ["convert", "--source", p.checkpoint, "--output_dir", p.out("cv2"), "--head",
         "classification", "--labels", "ham,ham"], p.out("cv2"), None)),
    ("convert-bad-head", USAGE, "argument --head: invalid choice: 'regression'", lambda p: (
        ["convert", "--source", p.checkpoint, "--output_dir", p.out("cv3"), "--head",
         "regression"], p.out("cv3"), None)),
    ("convert-busy-output", USAGE, "exists and is not empty", lambda p: (
        ["convert", "--source", p.checkpoint, "--output_dir", p.busy("cv")], None, None)),
    ("convert-source-missing", FAILURE, "missing.safetensors does not exist", lambda p: (
        ["convert", "--source", p.root / "missing.safetensors", "--output_dir", p.out("cv4")],
        p.out("cv4"), None)),
    ("convert-pickle-source", FAILURE, "only .safetensors checkpoints are read", lambda p: (
        ["convert", "--source", p.file("gpt2.bin", b"pickle"), "--output_dir", p.out("cv5")],
        p.out("cv5"), None)),
    ("convert-truncated-checkpoint", FAILURE, "model.safetensors: not a readable", lambda p: (
        ["convert", "--source", _checkpoint_copy(p, "trunc", _truncate("model.safetensors", 64)),
         "--output_dir", p.out("cv6")], p.out("cv6"), None)),
    ("convert-index-without-weight-map", FAILURE, "no 'weight_map'", lambda p: (
        ["convert", "--source", _checkpoint_copy(p, "index", _index_without_weight_map),
         "--output_dir", p.out("cv7")], p.out("cv7"), None)),
    ("convert-invalid-config", FAILURE, "config.json, line 1", lambda p: (
        ["convert", "--source", _checkpoint_copy(p, "cfg", _write("config.json", "{oops")),
         "--output_dir", p.out("cv8")], p.out("cv8"), None)),
    ("convert-config-deeper-than-weights", FAILURE,
     "config.json: n_layer (n_layers) is 100000 but the weights have 2; the config does not",
     lambda p: (["convert", "--source", _checkpoint_copy(p, "deep", _edit_config(n_layer=100_000)),
                 "--output_dir", p.out("cv11")], p.out("cv11"), None)),
    ("convert-unreadable-tokenizer", FAILURE, "tokenizer.json: not a readable tokenizer", lambda p: (
        ["convert", "--source", _checkpoint_copy(p, "tok", _write("tokenizer.json", "{oops")),
         "--output_dir", p.out("cv10")], p.out("cv10"), None)),
    ("convert-default-gpt2-offline", FAILURE, "cannot be reached (offline", lambda p: (
        ["convert", "--source", "openai-community/gpt2", "--output_dir", p.out("cv9")],
        p.out("cv9"), None)),
    # --- export
    ("export-bad-format", USAGE, "argument --format: invalid choice: 'tflite'", lambda p: (
        ["export", "--format", "tflite", "--model", p.model, "--output", p.out("ex1")],
        p.out("ex1"), None)),
    ("export-busy-output", USAGE, "exists and is not empty; pass --overwrite", lambda p: (
        ["export", "--format", "gpt2", "--model", p.model, "--output", p.busy("ex")], None, None)),
    ("export-model-missing", FAILURE, "missing-model: not a folder", lambda p: (
        ["export", "--format", "gpt2", "--model", p.root / "missing-model", "--output",
         p.out("ex2")], p.out("ex2"), None)),
    ("export-book-reading", USAGE, "trainable_token_pos=last", lambda p: (
        ["export", "--format", "gpt2", "--model", p.copy_model("last", _edit_config(
            trainable_token_pos="last")), "--output", p.out("ex3")], p.out("ex3"), None)),
    ("predict-onnx-backend-torch-folder", FAILURE, "no model.onnx", lambda p: predict(
        "--model", p.model, "--backend", "onnxruntime", "hi", out=p.out("ox.jsonl"))),
    # --- prepare-data
    ("prepare-split-fractions", USAGE, "--split_fractions 0.5,0.5,0.5: expected three positive numbers",
     lambda p: (["prepare-data", "--split_fractions", "0.5,0.5,0.5", "--save_to_disk",
                 p.out("pd1")], p.out("pd1"), None)),
    ("prepare-max-length-0", USAGE, "--max_length 0: expected at least 1",
     lambda p: (["prepare-data", "--max_length", "0"], None, None)),
    ("prepare-same-columns", USAGE, "--text_column and --label_column are both 'label'",
     lambda p: (["prepare-data", "--text_column", "label"], None, None)),
    ("prepare-context-length-0", USAGE, "--model_context_length must be positive",
     lambda p: (["prepare-data", "--model_context_length", "0"], None, None)),
    ("prepare-unknown-flag", USAGE, "unknown flag --datset; did you mean --dataset?",
     lambda p: (["prepare-data", "--datset", p.csv], None, None)),
    ("prepare-missing-file", FAILURE, "missing.csv", lambda p: (
        ["prepare-data", "--dataset", p.root / "missing.csv", "--save_to_disk", p.out("pd2")],
        p.out("pd2"), None)),
    ("prepare-sms-line-without-tab", FAILURE, "SMSSpamCollection, line 2: no tab found",
     lambda p: (["prepare-data", "--dataset", p.file("SMSSpamCollection", "ham\tok\nspam x\n"),
                 "--save_to_disk", p.out("pd3"), "--data_cache_dir", p.root / "cache"],
                p.out("pd3"), None)),
    ("prepare-labels-differ-by-case", FAILURE, "labels 'spam' (", lambda p: (
        ["prepare-data", "--dataset", p.file("case.csv", "text,label\nhi,ham\nwin,spam\nx,Spam\n"),
         "--data_cache_dir", p.root / "cache", "--save_to_disk", p.out("pd-case")],
        p.out("pd-case"), None)),
    ("train-labels-differ-by-case", FAILURE, "in column 'label' differ only by case", lambda p: (
        ["train", "--dataset", p.file("case2.csv", "text,label\nhi,Ham\nwin,spam\nx,ham\n"),
         "--init", "random", "--config_overrides", "emb_dim=32,n_layers=2,n_heads=4",
         "--data_cache_dir", p.root / "cache", "--output_dir", p.out("tr-case")],
        p.out("tr-case"), None)),
    ("evaluate-labels-differ-by-case", FAILURE, "unknown label 'SPAM' in column 'label', "
     "expected one of ham, spam ('SPAM' differs only by case from 'spam')", lambda p: (
        ["evaluate", "--model", p.model, "--eval_split", "all", "--output_dir", p.out("ev-case"),
         "--dataset", p.file("case3.csv", "text,label\nhi,ham\nwin,SPAM\n")],
        p.out("ev-case"), None)),
    ("prepare-hub-dataset-offline", FAILURE, "pass a local path", lambda p: (
        ["prepare-data", "--dataset", "nobody/no-such-data", "--data_cache_dir",
         p.root / "empty-cache", "--save_to_disk", p.out("pd4")], p.out("pd4"), None)),
    # --- train: argument errors, all found before any work
    ("train-learning-rate-not-float", USAGE, "--learning_rate/--learning-rate: invalid float",
     lambda p: (["train", "--learning_rate", "abc", "--output_dir", p.out("tr1")],
                p.out("tr1"), None)),
    ("train-bad-padding", USAGE, "argument --padding: invalid choice: 'sideways'",
     lambda p: (["train", "--padding", "sideways", "--output_dir", p.out("tr2")],
                p.out("tr2"), None)),
    ("train-bad-init", USAGE, "argument --init: invalid choice: 'bogus'",
     lambda p: (["train", "--init", "bogus", "--output_dir", p.out("tr3")], p.out("tr3"), None)),
    ("train-unknown-flag", USAGE, "unknown flag --learnin_rate; did you mean --learning_rate?",
     lambda p: (["train", "--learnin_rate", "1e-3", "--output_dir", p.out("tr4")],
                p.out("tr4"), None)),
    ("train-trainer-arguments-check", USAGE, "--load_best_model_at_end requires the save and",
     lambda p: (["train", "--output_dir", p.out("tr5"), "--eval_strategy", "steps",
                 "--save_strategy", "epoch", "--load_best_model_at_end", "true"],
                p.out("tr5"), None)),
    ("train-split-fractions", USAGE, "--split_fractions 1,0,0: expected three positive numbers",
     lambda p: (["train", "--split_fractions", "1,0,0", "--output_dir", p.out("tr6")],
                p.out("tr6"), None)),
    ("train-config-overrides", USAGE, "config_overrides: 'emb=3' is not FIELD=VALUE",
     lambda p: (["train", "--dataset", p.csv, "--init", "random", "--config_overrides", "emb=3",
                 "--output_dir", p.out("tr7")], p.out("tr7"), None)),
    ("train-epochs-inf", USAGE, "--num_train_epochs must be a finite number, got inf",
     lambda p: (["train", "--num_train_epochs", "inf", "--output_dir", p.out("tr-inf")],
                p.out("tr-inf"), None)),
    ("train-max-steps-negative", USAGE, "--max_steps must be a positive number of steps (or -1",
     lambda p: (["train", "--max_steps", "-5", "--output_dir", p.out("tr-ms")],
                p.out("tr-ms"), None)),
    ("train-seed-negative", USAGE, "--seed must be between 0 and 4294967295, got -1",
     lambda p: (["train", "--seed", "-1", "--output_dir", p.out("tr-seed")],
                p.out("tr-seed"), None)),
    ("train-args-json-key-twice", USAGE, "twice.json: key 'learning_rate' is given twice",
     lambda p: (["train", p.file("twice.json", '{"learning_rate": 1e-3, "output_dir": "'
                 + str(p.out("tr-j2")) + '", "learning_rate": 5e-5}')], p.out("tr-j2"), None)),
    ("train-args-yaml-key-twice", USAGE, "twice.yaml: key 'seed' is given twice",
     lambda p: (["train", p.file("twice.yaml", f"seed: 1\noutput_dir: {p.out('tr-y2')}\nseed: 2\n")],
                p.out("tr-y2"), None)),
    ("train-learning-rate-negative", USAGE, "--learning_rate must be > 0, got -1.0",
     lambda p: (["train", "--learning_rate", "-1", "--output_dir", p.out("tr8")],
                p.out("tr8"), None)),
    ("train-batch-size-0", USAGE, "--per_device_train_batch_size must be at least 1, got 0",
     lambda p: (["train", "--per_device_train_batch_size", "0", "--output_dir", p.out("tr9")],
                p.out("tr9"), None)),
    ("train-gradient-accumulation-0", USAGE, "--gradient_accumulation_steps must be at least 1",
     lambda p: (["train", "--gradient_accumulation_steps", "0", "--output_dir", p.out("tr10")],
                p.out("tr10"), None)),
    # No --dataset: the default (the bundled SMS file) is never read: usage errors come first.
    ("train-zero-epochs", USAGE, "--num_train_epochs must be > 0 (or --max_steps > 0), got 0.0: "
     "the run would train nothing",
     lambda p: (["train", "--num_train_epochs", "0", "--output_dir", p.out("tr11")],
                p.out("tr11"), None)),
    ("train-resume-missing-folder", USAGE, "no-checkpoint: no such folder",
     lambda p: (["train", "--resume_from_checkpoint", p.root / "no-checkpoint", "--output_dir",
                 p.out("tr12")], p.out("tr12"), None)),
    ("train-resume-incomplete", USAGE, "is not a complete checkpoint: missing or unreadable",
     lambda p: (["train", "--resume_from_checkpoint", p.busy("checkpoint-7"), "--output_dir",
                 p.out("tr13")], p.out("tr13"), None)),
    ("train-heads-do-not-divide", USAGE, "--config_overrides: n_heads (4) must divide emb_dim (30)",
     lambda p: (["train", "--init", "random", "--config_overrides", "emb_dim=30,n_heads=4",
                 "--output_dir", p.out("tr14")], p.out("tr14"), None)),
    ("train-zero-layers", USAGE, "--config_overrides: n_layers must be at least 1, got 0",
     lambda p: (["train", "--init", "random", "--config_overrides", "n_layers=0",
                 "--output_dir", p.out("tr15")], p.out("tr15"), None)),
    ("train-busy-output", USAGE, "exists and is not empty; pass --overwrite_output_dir",
     lambda p: (["train", "--dataset", p.csv, "--output_dir", p.busy("train")], None, None)),
    ("train-token-pos-without-length", USAGE, "--trainable_token_pos last reads a fixed position "
     "of padded texts: add --context_length",
     lambda p: (["train", "--dataset", p.csv, "--trainable_token_pos", "last", "--output_dir",
                 p.out("tr16")], p.out("tr16"), None)),
    ("train-class-weights-word", USAGE, "--class_weights 'heavy': expected 'balanced' or one "
     "positive weight per label", lambda p: (["train", "--class_weights", "heavy", "--output_dir",
                                             p.out("tcw1")], p.out("tcw1"), None)),
    ("train-class-weights-count", USAGE, "--class_weights 1,2,3: 3 weights for 2 labels",
     lambda p: (["train", "--dataset", p.csv, "--init", "random", "--config_overrides",
                 "emb_dim=32,n_layers=1,n_heads=4,context_length=64", "--class_weights", "1,2,3",
                 "--output_dir", p.out("tcw2")], p.out("tcw2"), None)),
    ("train-early-stopping-no-eval", USAGE, "--early_stopping_patience needs evaluations and "
     "checkpoints; --eval_strategy no contradicts it", lambda p: (
        ["train", "--early_stopping_patience", "2", "--eval_strategy", "no", "--output_dir",
         p.out("tes1")], p.out("tes1"), None)),
    ("train-early-stopping-strategies", USAGE, "--save_strategy steps must match --eval_strategy "
     "epoch", lambda p: (["train", "--early_stopping_patience", "2", "--save_strategy", "steps",
                          "--output_dir", p.out("tes2")], p.out("tes2"), None)),
    ("train-early-stopping-threshold-alone", USAGE, "--early_stopping_threshold needs "
     "--early_stopping_patience", lambda p: (["train", "--early_stopping_threshold", "0.1",
                                               "--output_dir", p.out("tes3")], p.out("tes3"), None)),
    ("train-early-stopping-unknown-metric", USAGE, "--metric_for_best_model f1_phish: not a "
     "validation metric", lambda p: (
        ["train", "--dataset", p.csv, "--init", "random", "--config_overrides",
         "emb_dim=32,n_layers=1,n_heads=4,context_length=64", "--early_stopping_patience", "1",
         "--metric_for_best_model", "f1_phish", "--output_dir", p.out("tes4")],
        p.out("tes4"), None)),
    ("train-no-padding-with-length", USAGE,
     "--no_padding conflicts with --context_length longest_training_example",
     lambda p: (["train", "--dataset", p.csv, "--no_padding", "--context_length",
                 "longest_training_example", "--output_dir", p.out("tr17")], p.out("tr17"), None)),
    ("train-book-split-dedupe", USAGE, "--split book conflicts with --dedupe",
     lambda p: (["train", "--split", "book", "--dedupe", "--output_dir", p.out("tr18")],
                p.out("tr18"), None)),
    ("train-longest-beyond-context", USAGE, "--context_length longest_training_example: the "
     "longest training text has", lambda p: (
        ["train", "--dataset", p.csv, "--init", "random", "--config_overrides",
         "emb_dim=32,n_layers=2,n_heads=4,context_length=4", "--trainable_token_pos", "last",
         "--context_length", "longest_training_example", "--output_dir", p.out("tr20")],
        p.out("tr20"), None)),
    ("train-dataset-missing", FAILURE, "nothere.csv: file not found",
     lambda p: (["train", "--dataset", p.root / "nothere.csv", "--output_dir", p.out("tr19")],
                p.out("tr19"), None)),
    ("prepare-book-split-dedupe", USAGE, "--split book conflicts with --dedupe",
     lambda p: (["prepare-data", "--split", "book", "--dedupe", "--save_to_disk", p.out("pd5")],
                p.out("pd5"), None)),
    # --- experiments and demo
    ("experiments-row-99", USAGE, "--rows '99': the book's table has rows 1 to 19",
     lambda p: (["experiments", "--rows", "99", "--output_dir", p.out("ex1")], p.out("ex1"), None)),
    ("experiments-rows-not-numbers", USAGE, "--rows '1,x': expected numbers like 1,4,10",
     lambda p: (["experiments", "--rows", "1,x", "--output_dir", p.out("ex2")], p.out("ex2"), None)),
    ("experiments-bad-train-flag", USAGE, "--learning_rate must be > 0",
     lambda p: (["experiments", "--rows", "1", "--learning_rate", "0", "--output_dir",
                 p.out("ex3")], p.out("ex3"), None)),
    ("demo-port-0", USAGE, "--port 0: expected a port number between 1 and 65535",
     lambda p: (["demo", "--model", p.model, "--port", "0"], None, None)),
    ("demo-model-missing", FAILURE, "no such model folder",
     lambda p: (["demo", "--model", p.root / "no" / "model"], None, None)),
    ("serve-port-out-of-range", USAGE, "--port 70000: expected a port number between 0 and 65535",
     lambda p: (["serve", "--model", p.model, "--port", "70000"], None, None)),
    ("serve-model-missing", FAILURE, "no such model folder",
     lambda p: (["serve", "--model", p.root / "no" / "model", "--port", "0"], None, None)),
    # --- push
    ("push-space-bad-id", FAILURE, "--space 'bad id!' is not a valid Space id", lambda p: (
        ["push", "--model", p.model, "--repo_id", "me/spam", "--dry_run", "--space", "bad id!",
         "--output_dir", p.out("pu4")], p.out("pu4"), None)),
    ("push-interrupted-model", FAILURE, "its run was stopped while saving it", lambda p: (
        ["push", "--model", p.copy_model("stopped", _stopped_while_saving), "--repo_id",
         "me/spam", "--dry_run", "--output_dir", p.out("pu5")], p.out("pu5"), None)),
    ("push-space-folder-busy", USAGE, "the --space folder", lambda p: (
        ["push", "--model", p.model, "--repo_id", "me/spam", "--dry_run", "--space", "me/demo",
         "--output_dir", p.busy("pu6-space").with_name("pu6")], p.root / "busy" / "pu6", None)),
    ("push-no-token", FAILURE, "No Hugging Face token", lambda p: (
        ["push", "--model", p.model, "--repo_id", "me/spam"], None, None)),
    ("push-dry-run-bad-repo-id", FAILURE, "--repo_id 'bad id!'", lambda p: (
        ["push", "--model", p.model, "--repo_id", "bad id!", "--dry_run", "--output_dir",
         p.out("pu1")], p.out("pu1"), None)),
    ("push-dry-run-missing-model", FAILURE, "not a folder", lambda p: (
        ["push", "--model", p.root / "nothing", "--repo_id", "me/spam", "--dry_run",
         "--output_dir", p.out("pu2")], p.out("pu2"), None)),
    ("push-dry-run-incomplete-model", FAILURE, "missing config.json", lambda p: (
        ["push", "--model", p.busy("push-model"), "--repo_id", "me/spam", "--dry_run",
         "--output_dir", p.out("pu3")], p.out("pu3"), None)),
    # --- benchmark: refused before any row's process starts
    ("benchmark-rows-bogus", USAGE, "--rows bogus: unknown row bogus; choose from baseline,",
     lambda p: (["benchmark", "--dataset", p.csv, "--rows", "bogus"], None, None)),
    ("benchmark-dataset-missing", FAILURE, "missing: file not found; give the SMSSpamCollection",
     lambda p: (["benchmark", "--dataset", p.root / "missing"], None, None)),
    ("benchmark-scale-sizes", USAGE, "--sizes a: expected positive numbers of texts",
     lambda p: (["benchmark", "--scale", "--sizes", "a"], None, None)),
    # --- the command itself
    ("unknown-command", USAGE, "unknown command 'trian'; choose from train,",
     lambda p: (["trian", "--output_dir", p.out("x")], p.out("x"), None)),
]  # fmt: skip


def _one_error_line(err: str) -> str:
    """The error line, checked to be the only one: progress bars that ran before the failure
    (loading weights, reading data) are not error output and are left out."""
    lines = [line for line in err.split("\n")[:-1] if not _PROGRESS.search(line)]
    assert len(lines) == 1 and err.endswith("\n"), f"not one line: {err!r}"
    assert lines[0].startswith("error: "), err
    assert "Traceback" not in err
    return lines[0] + "\n"


@pytest.mark.parametrize(
    ("status", "needle", "build"), [c[1:] for c in CASES], ids=[c[0] for c in CASES]
)
def test_bad_input_gives_one_line(paths, status, needle, build, capsys, monkeypatch):
    monkeypatch.delenv("HF_SPAM_DEBUG", raising=False)
    monkeypatch.delenv("HF_TOKEN", raising=False)
    monkeypatch.setattr("huggingface_hub.get_token", lambda: None)
    monkeypatch.setattr("hf_spam.hub.sharing.get_token", lambda: None, raising=False)
    argv, output, stdin = build(paths)
    if stdin is not None:
        wrapper = io.TextIOWrapper(io.BytesIO(stdin), encoding="utf-8", errors="surrogateescape")
        monkeypatch.setattr("sys.stdin", wrapper)
    capsys.readouterr()

    assert main([str(arg) for arg in argv]) == status
    err = _one_error_line(capsys.readouterr().err)
    assert needle in err
    if output is not None:
        assert not output.exists(), f"{output} was left behind"
        assert not [p for p in output.parent.glob(f".{output.name}*")], "temporary left behind"
    for busy in (paths.root / "busy").glob("*"):  # untouched: only the user's file, as it was
        assert [f.name for f in busy.iterdir()] == ["keep.txt"], busy
        assert (busy / "keep.txt").read_text() == "mine"


def test_cases_cover_every_command(paths):
    assert len(CASES) + len(_api_cases(paths)) >= 60
    commands = {str(build(paths)[0][0]) for *_, build in CASES}
    assert set(cli.COMMANDS) <= commands


def test_output_that_exists_is_kept(paths, capsys):
    out = paths.out("kept.jsonl")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text("mine\n")
    assert main(["predict", "--model", str(paths.model), "--output", str(out), "hi"]) == USAGE
    assert "exists; pass --overwrite" in _one_error_line(capsys.readouterr().err)
    assert out.read_text() == "mine\n"


def test_push_space_failure_leaves_no_dry_run_folder(paths, capsys, monkeypatch):
    """The Space step fails after the model's dry-run folder was built: nothing went up, so
    nothing is left behind."""

    def full_disk(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device", str(paths.out("pu7-space")))

    monkeypatch.setattr("hf_spam.hub.space.push_space", full_disk)
    out = paths.out("pu7")
    argv = ["push", "--model", str(paths.model), "--repo_id", "me/spam", "--dry_run"]
    assert main([*argv, "--space", "me/demo", "--output_dir", str(out)]) == FAILURE
    assert capsys.readouterr().err.endswith(
        f"error: {out}-space: no space left on the device; free some space and run again\n"
    )
    assert not out.exists() and not list(out.parent.glob(f".{out.name}*"))


def test_full_disk_while_writing_names_the_file(paths, capsys, monkeypatch):
    class FullDisk(io.StringIO):  # the temporary file beside the output, on a full disk
        def write(self, text):
            raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr("hf_spam.files.atomic.open", lambda *a, **k: FullDisk(), raising=False)
    out = paths.out("full.jsonl")
    assert main(["predict", "--model", str(paths.model), "--output", str(out), "hi"]) == FAILURE
    err = _one_error_line(capsys.readouterr().err)
    assert err == f"error: {out}: no space left on the device; free some space and run again\n"
    assert not out.exists()
    assert not list(out.parent.glob(f".{out.name}.*"))  # nor its temporary file


@pytest.mark.skipif(os.geteuid() == 0, reason="root is not refused by file permissions")
def test_permission_denied_names_the_file(paths, capsys):
    locked = paths.root / "locked"
    locked.mkdir(exist_ok=True)
    locked.chmod(0o500)
    try:
        out = locked / "p.jsonl"
        assert main(["predict", "--model", str(paths.model), "--output", str(out), "hi"]) == 1
        assert "permission denied" in _one_error_line(capsys.readouterr().err)
    finally:
        locked.chmod(0o700)


def test_ctrl_c_exits_130(capsys, monkeypatch):
    def interrupted(argv):
        raise KeyboardInterrupt

    monkeypatch.setattr("hf_spam.cli.predict.run", interrupted)
    assert main(["predict", "--model", "m", "hi"]) == 130
    assert capsys.readouterr().err == "error: interrupted\n"


def test_debug_flag_anywhere_reraises(paths, monkeypatch):
    with pytest.raises(ModelLoadError, match="no such model folder"):
        main(["predict", "--model", str(paths.root / "no" / "model"), "--debug", "hi"])
    monkeypatch.setenv("HF_SPAM_DEBUG", "1")
    with pytest.raises(UsageError, match="--batch_size"):
        main(["predict", "--model", str(paths.model), "--batch_size", "0", "hi"])


def test_trainer_debug_option_is_left_to_trainer():
    assert cli._split_debug(["--debug", "underflow_overflow", "--x"]) == (
        ["--debug", "underflow_overflow", "--x"],
        False,
    )
    assert cli._split_debug(["--x", "--debug"]) == (["--x"], True)


def test_help_lists_every_command(capsys):
    assert main(["--help"]) == 0
    text = capsys.readouterr().out
    for command in ("train", "prepare-data", "evaluate", "predict", "push", "convert"):
        assert f"  {command} " in text
    assert main([]) == USAGE  # no command: the same list, as an error
    assert main(["convert", "--help"]) == 0  # argparse's exit, returned as a status
    assert capsys.readouterr().out.startswith("usage: hf-spam convert ")


# --------------------------------------------------------------------------------------------
# The Python API raises the same classes, and the boundary maps them to the same lines
# --------------------------------------------------------------------------------------------


def _api_cases(p: Paths):
    truncated = p.copy_model("trunc", _truncate("model.safetensors", 100))
    return [
        (UsageError, "--batch_size", lambda: load_classifier(p.model, batch_size=0)),
        (UsageError, "--device 'warp9'", lambda: load_classifier(p.model, device="warp9")),
        (UsageError, "--batch_size", lambda: InferenceArguments(batch_size=-1)),
        (ModelLoadError, "model.safetensors: not a readable", lambda: load_classifier(truncated)),
        (DataError, "binary.txt, line 2", lambda: read_texts(p.root / "files" / "binary.txt")),
        (DataError, "text 2: expected a string, got NoneType",
         lambda: classify(load_classifier(p.model), ["ok", None])),
        # GPTConfig travels to the Hub with the weights: it raises plain ValueErrors.
        (ValueError, "emb_dim (30) must be divisible by n_heads (4)",
         lambda: GPTConfig(emb_dim=30, n_heads=4)),
        (ValueError, "n_heads must be at least 1, got 0", lambda: GPTConfig(n_heads=0)),
        (ValueError, "drop_rate must be in [0, 1), got 1.5", lambda: GPTConfig(drop_rate=1.5)),
        (FileNotFoundError, f"GPT-2 checkpoint not found: {p.root / 'no' / 'gpt2'} does not exist",
         lambda: load_openai_gpt2(GPTForSequenceClassification, p.root / "no" / "gpt2")),
        (CheckpointError, "only .safetensors checkpoints are read",
         lambda: load_openai_gpt2(GPTForSequenceClassification, p.file("w.bin", b"pickle"))),
        (UsageError, "--split_fractions 0.5,0.5,0.5: expected three positive numbers",
         lambda: DataArguments(split_fractions="0.5,0.5,0.5")),
        (DataError, "nothere.csv: file not found",
         lambda: prepare_data(DataArguments(dataset=str(p.root / "nothere.csv")))),
        (ModelLoadError, "its run was stopped while saving it",
         lambda: load_classifier(p.copy_model("stopped", _stopped_while_saving))),
    ]  # fmt: skip


def test_python_api_raises_the_same_errors(paths):
    paths.file("binary.txt", b"fine\n\xff\xfe\n")
    for error, needle, call in _api_cases(paths):
        with pytest.raises(error) as info:
            call()
        status, message = describe(info.value)
        assert status == getattr(info.value, "exit_code", FAILURE)
        assert needle in message and "\n" not in message


def test_describe_maps_library_failures():
    assert describe(OSError(errno.EFBIG, "File too large", "out/model.safetensors")) == (
        1,
        "out/model.safetensors: file too large (a file-size limit was reached)",
    )
    status, message = describe(json.JSONDecodeError("Expecting value", "{\n x", 3))
    assert (status, message) == (1, "invalid JSON, line 2, column 2: Expecting value")
    status, message = describe(ValueError("model type `warp` is not recognised"))
    assert status == 1 and message.startswith("unknown model_type in config.json")
    status, message = describe(RuntimeError("boom\nmore"))
    assert (status, message) == (1, "RuntimeError: boom (run with --debug for the traceback)")


# --------------------------------------------------------------------------------------------
# Real processes: exit codes, --debug, a file-size limit
# --------------------------------------------------------------------------------------------


def _run(argv: list[str], limit: int | None = None):
    def preexec():  # the limit and SIGXFSZ ignored: the write fails with EFBIG instead
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

    env = {**os.environ, "PYTHONPATH": str(ROOT), "HF_HUB_OFFLINE": "1"}
    env.pop("HF_SPAM_DEBUG", None)
    return subprocess.run(
        [sys.executable, *argv],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        preexec_fn=preexec if limit else None,
    )


def test_real_processes_give_the_exit_codes(paths):
    usage = _run(["-m", "hf_spam.cli", "predict", "--model", str(paths.model), "--batch_size",
                  "0", "hi"])  # fmt: skip
    assert usage.returncode == 2
    assert usage.stderr == "error: --batch_size must be a positive integer, got 0\n"

    missing = paths.root / "no" / "model"
    failure = _run(["scripts/predict.py", "--model", str(missing), "hi"])
    assert failure.returncode == 1
    assert failure.stderr == f"error: {missing}: no such model folder\n"


def test_predict_with_stdin_closed_is_one_line(paths):
    """No texts and no stdin at all (`0<&-`, as a daemon or a cron job may start it)."""
    command = f"{shlex.quote(sys.executable)} -m hf_spam.cli predict --model {paths.model} 0<&-"
    result = _run(
        ["-c", f"import subprocess, sys; sys.exit(subprocess.call({command!r}, shell=True))"]
    )
    assert result.returncode == 2, result.stderr[-2000:]
    assert result.stderr.splitlines()[-1] == (
        "error: no texts: give them as arguments, with --input FILE, or on stdin (stdin is closed)"
    )


@pytest.mark.parametrize("stop", [signal.SIGTERM, signal.SIGHUP])
def test_a_stop_signal_is_handled_as_ctrl_c(paths, stop):
    """`docker stop` / systemd / a scheduler mid-write: one line, 128 + the signal, and no
    temporary file left beside the destination, which is not created."""
    texts = paths.file(
        "long.txt", "".join(f"message {i} WIN a prize now\n" for i in range(200_000))
    )
    out = paths.out(f"stopped-{stop.name}.jsonl")
    env = {**os.environ, "PYTHONPATH": str(ROOT), "HF_HUB_OFFLINE": "1"}
    command = ["-m", "hf_spam.cli", "predict", "--model", str(paths.model), "--input", str(texts),
               "--output", str(out), "--progress", "false"]  # fmt: skip
    process = subprocess.Popen([sys.executable, *command], cwd=ROOT, env=env, text=True,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE)  # fmt: skip
    deadline = time.monotonic() + 120
    while not list(out.parent.glob(f".{out.name}.tmp-*")) and process.poll() is None:
        assert time.monotonic() < deadline, "the temporary file never appeared"
        time.sleep(0.01)
    process.send_signal(stop)
    _, stderr = process.communicate(timeout=120)
    assert process.returncode == 128 + stop, stderr[-2000:]
    assert stderr.splitlines()[-1] == f"error: terminated ({stop.name})"
    assert not out.exists()
    assert not list(out.parent.glob(f".{out.name}*")), "temporary file left behind"


def test_file_size_limit_leaves_no_partial_predictions(paths):
    texts = paths.file("many.txt", "".join(f"message number {i} WIN a prize\n" for i in range(400)))
    out = paths.out("limited.jsonl")
    result = _run(
        ["scripts/predict.py", "--model", str(paths.model), "--input", str(texts), "--output",
         str(out), "--progress", "false"],
        limit=20_000,
    )  # fmt: skip
    assert result.returncode == 1, result.stderr[-2000:]
    assert result.stderr.splitlines()[-1] == (
        f"error: {out}: file too large (a file-size limit was reached)"
    )
    assert not out.exists()
    assert not list(out.parent.glob(f".{out.name}*")), "temporary file left behind"


def _finished_experiment_row(p: Paths, out: Path) -> list[str]:
    """A grid folder whose row 1 is finished: `experiments --rows 1` only writes the reports."""
    from dataclasses import asdict

    from hf_spam.experiments.grid import BOOK_ROWS, ExperimentArguments, RowResult, row_argv

    args = ExperimentArguments(output_dir=str(out), rows="1", init="random")
    flags = row_argv(BOOK_ROWS[0], args, [])
    record = RowResult(1, str(out / "row-01"), 1.0, 0.9, 0.9, 60.0, "cpu", flags)
    (out / "row-01").mkdir(parents=True, exist_ok=True)
    (out / "row-01" / "experiment.json").write_text(json.dumps(asdict(record)))
    return ["experiments", "--rows", "1", "--init", "random", "--output_dir", str(out)]


def _mid_csv(p: Paths) -> Path:
    """A CSV of about 270 kB: its Arrow cache is larger than the limits below."""
    rows = "".join(f"message number {i} WIN a prize or see you at home,{'ham' if i % 3 else 'spam'}\n"
                   for i in range(4000))  # fmt: skip
    return p.file("mid.csv", "text,label\n" + rows)


# A full disk (a file-size limit, SIGXFSZ ignored, in a real process): (id, argv builder,
# limit in bytes, the error line as a pattern). The line names the file being written, never
# the input that was being read.
LIMITED_CASES = [
    ("experiments-plot", lambda p: _finished_experiment_row(p, p.out("grid-full")), 10_000,
     lambda p: re.escape(f"error: {p.out('grid-full')}/experiments.png: file too large (a "
                         "file-size limit was reached)")),
    ("prepare-csv-cache", lambda p: ["prepare-data", "--dataset", str(_mid_csv(p)),
                                      "--data_cache_dir", str(p.root / "full-cache-csv")], 100_000,
     lambda p: re.escape(f"error: {p.root / 'full-cache-csv'}/csv/") + r".+/csv-train\.arrow: "
     + re.escape("file too large (a file-size limit was reached)")),
    ("prepare-sms-cache", lambda p: ["prepare-data", "--data_cache_dir",
                                      str(p.root / "full-cache-sms")], 100_000,
     lambda p: re.escape(f"error: {p.root / 'full-cache-sms'}/generator/") +
     r".+/generator-train\.arrow: " + re.escape("file too large (a file-size limit was reached)")),
]  # fmt: skip


@pytest.mark.parametrize(
    ("build", "limit", "line"), [c[1:] for c in LIMITED_CASES], ids=[c[0] for c in LIMITED_CASES]
)
def test_a_full_disk_names_the_file_being_written(paths, build, limit, line):
    result = _run(["-m", "hf_spam.cli", *build(paths)], limit=limit)
    assert result.returncode == FAILURE, result.stderr[-2000:]
    assert re.fullmatch(line(paths), result.stderr.splitlines()[-1]), result.stderr[-2000:]
    grid = paths.out("grid-full")
    assert not list(grid.glob(".experiments*")), "temporary file left behind"


HELP_OF_EVERY_SCRIPT = """
import contextlib, io, pathlib, runpy, sys
scripts = sorted(pathlib.Path("scripts").glob("*.py"))
sys.path.insert(0, "scripts")  # as `python scripts/<name>.py` does
for script in scripts:
    sys.argv, out = [str(script), "--help"], io.StringIO()
    with contextlib.redirect_stdout(out):
        try:
            runpy.run_path(str(script), run_name="__main__")
        except SystemExit as exit:
            assert exit.code == 0, (script, exit.code)
    print(script.name, out.getvalue().splitlines()[0])
"""


def test_every_script_help_works_from_the_repo_root():
    """`python scripts/<name>.py --help`: scripts/ first on sys.path, as Python puts it."""
    result = _run(["-c", HELP_OF_EVERY_SCRIPT])
    assert result.returncode == 0, result.stderr[-2000:]
    lines = dict(line.split(" ", 1) for line in result.stdout.splitlines())
    assert set(lines) == {p.name for p in (ROOT / "scripts").glob("*.py")}
    for command in ("train", "prepare-data", "evaluate", "predict", "push", "convert"):
        assert any(usage.startswith(f"usage: hf-spam {command} ") for usage in lines.values())
