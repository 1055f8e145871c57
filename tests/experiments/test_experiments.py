"""The book's experiment grid: row table, row selection, resume, reports."""

from __future__ import annotations

import json
import shutil
from dataclasses import replace

import pytest
from PIL import Image

from hf_spam.errors import DataError, UsageError
from hf_spam.experiments.grid import (
    BOOK_ROWS,
    ExperimentArguments,
    RowResult,
    _run_key,
    parse_rows,
    plot_experiments,
    row_argv,
    run_experiments,
)


def test_the_table_has_the_books_nineteen_rows_in_order():
    assert [row.number for row in BOOK_ROWS] == list(range(1, 20))
    # Figures as printed in the book's README (rows 1 and 10).
    assert BOOK_ROWS[0].book[:3] == (96.63, 99.33, 95.00)
    assert BOOK_ROWS[9].weights == "random" and BOOK_ROWS[9].book[2] == 93.67


@pytest.mark.parametrize(
    ("text", "rows"),
    [
        ("all", list(range(1, 20))),
        ("1,4,10", [1, 4, 10]),
        ("10,1", [1, 10]),
        ("3-5,19", [3, 4, 5, 19]),
    ],
)
def test_parse_rows(text, rows):
    assert parse_rows(text) == rows


@pytest.mark.parametrize("text", ["0", "20", "a", "1,,2", "5-3"])
def test_parse_rows_names_the_flag(text):
    with pytest.raises(UsageError, match="--rows"):
        parse_rows(text)


def fixture_flags(spam_csv) -> list[str]:
    """A grid on the small fixture CSV: the bonus script's split is the SMS file's only."""
    return ["--dataset", str(spam_csv), "--split", "clean", "--disable_tqdm", "true",
            "--save_strategy", "no"]  # fmt: skip


def test_row_flags_say_what_the_book_does(tmp_path):
    args = ExperimentArguments(output_dir=str(tmp_path))
    by_number = {row.number: row_argv(row, args, ["--dataset", "x"]) for row in BOOK_ROWS}
    row1 = by_number[1]
    assert row1[row1.index("--trainable_token_pos") + 1] == "last"
    assert row1[row1.index("--context_length") + 1] == "longest_training_example"
    assert row1[row1.index("--output_dir") + 1] == str(tmp_path / "row-01")
    assert row1[-2:] == ["--dataset", "x"]  # the user's flags come last and win
    assert "openai-community/gpt2-xl" in by_number[8]
    assert by_number[10][by_number[10].index("--init") + 1] == "random"
    assert "--no_padding" in by_number[14] and "--gradient_accumulation_steps" in by_number[15]
    assert "--disable_causal_mask" in by_number[17] and "--average_embeddings" in by_number[19]
    lora = by_number[11]
    assert lora[lora.index("--lora_alpha_convention") + 1] == "book"
    for argv in by_number.values():  # the bonus script's split; its loader drops the last batch
        assert argv[argv.index("--split") + 1] == "bonus"
        assert argv[argv.index("--dataloader_drop_last") + 1] == "true"


def test_quick_random_grid_runs_resumes_and_reports(spam_csv, tmp_path):
    out = tmp_path / "grid"
    args = ExperimentArguments(output_dir=str(out), rows="1,2,16", init="random", quick=True)
    flags = fixture_flags(spam_csv)
    results = run_experiments(args, flags)
    assert [r.number for r in results] == [1, 2, 16]
    for result in results:
        saved = json.loads((out / f"row-{result.number:02d}" / "all_results.json").read_text())
        assert result.test_accuracy == pytest.approx(saved["test_accuracy"])
        assert 0.0 <= result.test_accuracy <= 1.0
        # A row's time counts the trunk pass, which runs before Trainer's clock starts.
        assert result.trunk_seconds > 0.0
        assert result.seconds == pytest.approx(saved["train_runtime"] + result.trunk_seconds)
    markdown = (out / "experiments.md").read_text()
    assert "random (book: pretrained)" in markdown and "95.00%" in markdown
    assert f"(trunk {results[0].trunk_seconds / 60:.2f})" in markdown
    plot = Image.open(out / "experiments.png")
    assert plot.size[0] > 100
    assert plot.info["Title"] == (
        "Test accuracy per row: hf_spam, random weights against the book, GPT-2 weights"
    )
    # A second invocation finds every row finished and runs nothing.
    stamp = (out / "row-01" / "experiment.json").stat().st_mtime_ns
    again = run_experiments(args, flags)
    assert [r.test_accuracy for r in again] == [r.test_accuracy for r in results]
    assert (out / "row-01" / "experiment.json").stat().st_mtime_ns == stamp


def test_rows_that_are_the_same_run_train_once(spam_csv, tmp_path):
    """Row 18 is row 1's run (class labels never equal the ignored id); with random weights
    row 10 is row 5's. Each pair trains once, in one invocation or two; the second row reports
    the first one's run."""
    random_grid = ExperimentArguments(output_dir=str(tmp_path), init="random")
    argv = {row.number: row_argv(row, random_grid, []) for row in BOOK_ROWS}
    assert _run_key(argv[5]) == _run_key(argv[10]) and _run_key(argv[1]) == _run_key(argv[18])
    assert len({_run_key(a) for a in argv.values()}) == len(BOOK_ROWS) - 2
    out = tmp_path / "grid"
    args = ExperimentArguments(output_dir=str(out), rows="1,18", init="random", quick=True)
    flags = fixture_flags(spam_csv)
    first, same = run_experiments(args, flags)
    assert (same.number, same.output_dir, same.test_accuracy) == (18, first.output_dir,
                                                                  first.test_accuracy)  # fmt: skip
    assert sorted(p.name for p in (out / "row-18").iterdir()) == ["experiment.json"]
    assert "| 18 |" in (out / "experiments.md").read_text().replace("  ", " ")

    # A later invocation finds the twin finished in the folder: row 18 again reports row 1's run.
    shutil.rmtree(out / "row-18")
    (again,) = run_experiments(replace(args, rows="18"), flags)
    assert (again.output_dir, again.test_accuracy) == (first.output_dir, first.test_accuracy)
    assert sorted(p.name for p in (out / "row-18").iterdir()) == ["experiment.json"]


def test_a_grid_run_in_parts_reports_every_finished_row(spam_csv, tmp_path):
    """`--rows 1` then `--rows 16`: the second table has both rows and names the rest; a row
    finished with other flags is not this grid's and stays out of the table."""
    out = tmp_path / "grid"
    flags = fixture_flags(spam_csv)

    def grid(rows: str, *extra: str):
        args = ExperimentArguments(output_dir=str(out), rows=rows, init="random", quick=True)
        return run_experiments(args, [*flags, *extra])

    grid("1")
    grid("2", "--seed", "7")
    (second,) = grid("16")
    assert second.number == 16
    report = json.loads((out / "experiments.json").read_text())
    assert [r["number"] for r in report["results"]] == [1, 16]
    markdown = (out / "experiments.md").read_text()
    assert "Rows not finished in this folder: 2, 3, 4, 5, 10, 17, 19." in markdown


def test_a_damaged_row_record_is_named_and_nothing_runs(spam_csv, tmp_path):
    out = tmp_path / "grid"
    (out / "row-01").mkdir(parents=True)
    (out / "row-01" / "experiment.json").write_text('{"number": 1, "seconds"')
    args = ExperimentArguments(output_dir=str(out), rows="1", init="random", quick=True)
    with pytest.raises(DataError, match=r"row-01/experiment.json: not a finished row's record"):
        run_experiments(args, fixture_flags(spam_csv))
    assert sorted(p.name for p in (out / "row-01").iterdir()) == ["experiment.json"]


def test_the_plot_says_which_weights_each_side_started_from(tmp_path):
    rows = [row for row in BOOK_ROWS if row.number in (1, 10)]
    results = [RowResult(row.number, "x", 1.0, 0.9, 0.9, 60.0, "cpu", []) for row in rows]
    for init, ours in (("random", "hf_spam, random weights"), ("pretrained", "hf_spam")):
        path = plot_experiments(rows, results, tmp_path / f"{init}.png", init)
        assert Image.open(path).info["Title"] == (
            f"Test accuracy per row: {ours} against the book, GPT-2 weights (row 10: random)"
        )


def test_every_chosen_rows_record_is_read_before_any_row_trains(spam_csv, tmp_path):
    """`--rows 2,16` with row 16's record damaged (here: not UTF-8): named before row 2 trains."""
    out = tmp_path / "grid"
    (out / "row-16").mkdir(parents=True)
    (out / "row-16" / "experiment.json").write_bytes(b"\xff\xfe{")
    args = ExperimentArguments(output_dir=str(out), rows="2,16", init="random", quick=True)
    with pytest.raises(DataError, match=r"row-16/experiment.json: not a finished row's record"):
        run_experiments(args, ["--dataset", str(spam_csv)])
    assert sorted(p.name for p in out.iterdir()) == ["row-16"]  # no row-02, no trunk features
