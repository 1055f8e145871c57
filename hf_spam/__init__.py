"""hf_spam: the from-scratch GPT of *Build a Large Language Model (From Scratch)* as a
Hugging Face model, fine-tuned for text classification.

Importing the package registers the model with transformers' Auto classes, and makes folders it
saves carry `auto_map` and the modeling code, so they load with `trust_remote_code=True` where
hf_spam is not installed.
"""

from transformers import (
    AutoConfig,
    AutoModel,
    AutoModelForCausalLM,
    AutoModelForSequenceClassification,
)

from .model.configuration import GPT2_PRESETS, GPTConfig
from .model.modeling import (
    GPTForCausalLM,
    GPTForSequenceClassification,
    GPTModel,
    GPTPreTrainedModel,
)
from .model.weights import load_openai_gpt2

__version__ = "0.1.0"

AutoConfig.register(GPTConfig.model_type, GPTConfig, exist_ok=True)
GPTConfig.register_for_auto_class()
for _auto_class, _model_class in (
    (AutoModel, GPTModel),
    (AutoModelForCausalLM, GPTForCausalLM),
    (AutoModelForSequenceClassification, GPTForSequenceClassification),
):
    _auto_class.register(GPTConfig, _model_class, exist_ok=True)
    _model_class.register_for_auto_class(_auto_class.__name__)

__all__ = [
    "GPT2_PRESETS",
    "GPTConfig",
    "GPTForCausalLM",
    "GPTForSequenceClassification",
    "GPTModel",
    "GPTPreTrainedModel",
    "__version__",
    "load_openai_gpt2",
]
