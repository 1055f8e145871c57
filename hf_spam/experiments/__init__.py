"""The book's table of experiments, row for row, and its plot."""
