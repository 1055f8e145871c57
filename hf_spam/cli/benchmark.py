"""`hf-spam benchmark`: the book's fine-tuning workload, the plain approach vs hf_spam, one table.

    hf-spam benchmark --dataset ../shared/data/SMSSpamCollection          # full
    hf-spam benchmark --dataset ../shared/data/SMSSpamCollection --quick  # < 2 min
    hf-spam benchmark --scale [--quick]   # the trunk feature store at IMDb-like sizes
    hf-spam benchmark --bulk --dataset ../shared/data/SMSSpamCollection   # bulk prediction

See `hf_spam/benchmarks/speed.py` for what each row measures.
"""

from __future__ import annotations

from .arguments import parser_for


def run(argv: list[str]) -> int:
    if "--scale" in argv:  # the scale benchmark (issue 11): its own module and flags
        from ..benchmarks import scale as scale_benchmark
        from ..benchmarks.scale import ScaleArguments
        from ..benchmarks.scale import main as scale_main

        argv = [a for a in argv if a != "--scale"]
        description = scale_benchmark.__doc__.split("\n")[0]
        parser_for("benchmark --scale", (ScaleArguments,), description).parse(argv)
        scale_main(argv)
        return 0
    from ..benchmarks.speed import BenchmarkArguments, main

    if "--bulk" in argv:  # bulk prediction (issue 11): `hf-spam predict` end to end
        from ..benchmarks.bulk import main

    # Parsed here first so bad flags take the one error path; benchmark.main parses them again
    # (it is also its own per-row subprocess entry point).
    parser_for("benchmark", (BenchmarkArguments,), __doc__.split("\n")[0]).parse(argv)
    main(argv)
    return 0
