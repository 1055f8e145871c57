"""The benchmark tables, `hf-spam benchmark speed|bulk|scale|serve`: one module per table.

`runner` runs every row in its own process and brings back its record and peak memory, and
prints the machine header over each table; `speed`, `bulk`, `scale` and `serve` are the tables
(each an `ARGUMENTS` dataclass of its flags and a `main`; `speed`, `scale` and `serve` register
their rows in `ROWS`); `workload` (the book's SMS workload) and `synthetic` (IMDb-like token
rows) are their data.
"""
