"""Stand-in for transformers' `tests/generation/test_utils.py`, which the 5.25.0 sdist does not
ship: `test_modeling_common.py` imports its `GenerationTesterMixin` to check that a tester of a
generating model runs the generation tests. Those tests are not available, so the tester lists
no generative classes (`all_generative_model_classes = ()`) and does not use this class;
`generate()` is tested in `tests/model/test_modeling.py` and `test_modeling_ecosystem.py`."""


class GenerationTesterMixin:
    pass
