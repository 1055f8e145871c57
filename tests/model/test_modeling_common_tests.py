"""transformers' own common model tests (`ModelTesterMixin`, vendored from the 5.25.0 sdist in
`transformers_5_25_0/`) run on the three classes, as an in-tree model's tester runs them.

Tiny configurations keep them fast; skips are the mixin's own, for hardware or libraries this
machine lacks (accelerators, flash attention, bitsandbytes, deepspeed...) or for features the
model does not declare, each with its reason in pytest's summary (`-ra`).
"""

from __future__ import annotations

import unittest
from unittest import mock

from transformers.models.auto import modeling_auto
from transformers_5_25_0.test_modeling_common import (
    ModelTesterMixin,
    ids_tensor,
    random_attention_mask,
)

from hf_spam import GPTConfig, GPTForCausalLM, GPTForSequenceClassification, GPTModel


class GPTModelTester:
    """Inputs and a configuration of the sizes transformers' testers use (GPT-2's, shrunk)."""

    def __init__(self, parent, batch_size: int = 3, seq_length: int = 7):
        self.parent = parent
        self.batch_size = batch_size
        self.seq_length = seq_length
        self.is_training = True
        self.vocab_size = 99
        self.hidden_size = 32
        self.num_hidden_layers = 2
        self.num_attention_heads = 4
        self.num_labels = 3
        self.context_length = 64

    def get_config(self) -> GPTConfig:
        return GPTConfig(
            vocab_size=self.vocab_size,
            context_length=self.context_length,
            emb_dim=self.hidden_size,
            n_heads=self.num_attention_heads,
            n_layers=self.num_hidden_layers,
            num_labels=self.num_labels,
            bos_token_id=self.vocab_size - 1,
            eos_token_id=self.vocab_size - 1,
            pad_token_id=self.vocab_size - 1,
        )

    def prepare_config_and_inputs(self):
        input_ids = ids_tensor([self.batch_size, self.seq_length], self.vocab_size)
        attention_mask = random_attention_mask([self.batch_size, self.seq_length])
        return self.get_config(), input_ids, attention_mask

    def prepare_config_and_inputs_for_common(self):
        config, input_ids, attention_mask = self.prepare_config_and_inputs()
        return config, {"input_ids": input_ids, "attention_mask": attention_mask}


# An in-tree model is listed in transformers' Auto mappings by class name; the mixin reads them
# to tell the base model (no loss, skipped by the training tests) from the heads and to build
# each head's labels.
IN_TREE_NAMES = {
    "MODEL_MAPPING_NAMES": GPTModel,
    "MODEL_FOR_CAUSAL_LM_MAPPING_NAMES": GPTForCausalLM,
    "MODEL_FOR_SEQUENCE_CLASSIFICATION_MAPPING_NAMES": GPTForSequenceClassification,
}


class GPTModelCommonTest(ModelTesterMixin, unittest.TestCase):
    all_model_classes = (GPTModel, GPTForCausalLM, GPTForSequenceClassification)
    # transformers' generation tests (tests/generation/) are not in the sdist; see the stand-in.
    all_generative_model_classes = ()
    pipeline_model_mapping = {}

    @classmethod
    def setUpClass(cls):
        cls.listed = [
            mock.patch.dict(getattr(modeling_auto, name), {GPTConfig.model_type: model.__name__})
            for name, model in IN_TREE_NAMES.items()
        ]
        for patch in cls.listed:
            patch.start()

    @classmethod
    def tearDownClass(cls):
        for patch in cls.listed:
            patch.stop()

    def setUp(self):
        self.model_tester = GPTModelTester(self)
