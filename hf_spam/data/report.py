"""The data summary: rows per class per split, token lengths, truncation, padding, leakage."""

from __future__ import annotations

from dataclasses import dataclass

from ..reporting import format_table


@dataclass
class DataReport:
    """What the summary table is built from; every count is in rows (texts)."""

    source: str
    label_names: list[str]
    rows_read: dict[str, int]
    empty_dropped: dict[str, int]
    duplicates_dropped: int
    balanced: bool
    class_counts: dict[str, dict[str, int]]  # split -> label -> rows
    token_lengths: dict[str, dict[str, float]]  # split -> min/median/max, before truncation
    truncated: dict[str, int]  # split -> texts longer than max_length
    padding: str  # "dynamic", or the --context_length every example is padded to
    max_length: int
    pad_token_id: int
    cross_split_duplicates: dict[str, int]  # "test in train" -> test texts that also occur in train
    split: str = "clean"  # "book", "bonus" or "clean"


def format_report(report: DataReport) -> str:
    """The summary table: rows per class per split, token lengths, truncation, leakage."""
    read = sum(report.rows_read.values())
    empty = sum(report.empty_dropped.values())
    lines = [
        f"Source: {report.source}",
        f"Rows read: {read}; empty texts dropped: {empty}; duplicate texts dropped: "
        f"{report.duplicates_dropped}; balanced: {'yes' if report.balanced else 'no'}; "
        f"split: {report.split}",
        "",
    ]
    rows = []
    for split, counts in report.class_counts.items():
        lengths = report.token_lengths[split]
        rows.append(
            {
                "split": split,
                **{name: counts[name] for name in report.label_names},
                "total": sum(counts.values()),
                "tokens min/median/max": f"{lengths['min']:g} / {lengths['median']:g} / "
                f"{lengths['max']:g}",
                "truncated": report.truncated[split],
            }
        )
    lines.append(format_table(rows))
    if report.padding == "dynamic":
        how = f"dynamic (batches padded, truncated at {report.max_length} tokens"
    else:
        how = (
            f"--context_length {report.padding} (every example padded to {report.max_length} tokens"
        )
    lines += [
        "",
        f"Padding: {how}, pad id {report.pad_token_id})",
        "Texts also in an earlier split: "
        + ", ".join(f"{key} {n}" for key, n in report.cross_split_duplicates.items()),
    ]
    return "\n".join(lines)


__all__ = ["DataReport", "format_report"]
