"""transformers' common model tests, as the transformers 5.25.0 sdist ships them (README.md).

`test_modeling_common.py` is the sdist's file unchanged. The sdist leaves out two folders that
file imports, `tests/exporters/` and `tests/generation/`; `exporters/test_export.py` and
`generation/test_utils.py` here stand in for them (see their docstrings). The tests decorate
with the `parameterized` package; where it is not installed, `parameterized_stand_in` gives
the one function they use.
"""

import importlib.util
import sys

if importlib.util.find_spec("parameterized") is None:
    from . import parameterized_stand_in

    sys.modules["parameterized"] = parameterized_stand_in
