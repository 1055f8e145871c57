"""Configuration of the book's GPT, in the book's words and in transformers' words.

The field names are the ones of chapter 4 (`emb_dim`, `n_heads`, ...) so the code reads like the
book; `attribute_map` adds the standard names (`hidden_size`, `num_hidden_layers`, ...) that
transformers, accelerate and peft utilities look for.
"""

from __future__ import annotations

from typing import Any, ClassVar

from transformers import PretrainedConfig

# The four sizes OpenAI released, as in the book's `model_configs` table.
GPT2_PRESETS: dict[str, dict[str, int]] = {
    "gpt2": {"emb_dim": 768, "n_layers": 12, "n_heads": 12},  # 124M
    "gpt2-medium": {"emb_dim": 1024, "n_layers": 24, "n_heads": 16},  # 355M
    "gpt2-large": {"emb_dim": 1280, "n_layers": 36, "n_heads": 20},  # 774M
    "gpt2-xl": {"emb_dim": 1600, "n_layers": 48, "n_heads": 25},  # 1558M
}


# Values of `trainable_token_pos`, the book's names (`flexible` is hf_spam's default).
TRAINABLE_TOKEN_POSITIONS = ("flexible", "last", "first")


class GPTConfig(PretrainedConfig):
    r"""Configuration of [`GPTModel`] and its heads.

    Args:
        vocab_size: Number of tokens of the BPE vocabulary (GPT-2: 50257).
        context_length: Longest sequence the positional embedding covers (GPT-2: 1024).
        emb_dim: Width of the embeddings and of every transformer block.
        n_heads: Number of attention heads; must divide `emb_dim`.
        n_layers: Number of transformer blocks.
        drop_rate: Dropout after the embeddings, on the attention weights and on each shortcut.
            The book fine-tunes with 0.0.
        qkv_bias: Whether the query/key/value projections have a bias (GPT-2's do).
        layer_norm_eps: Epsilon of the layer norms (the book's `eps=1e-5`).
        initializer_range: Standard deviation of the normal initialiser for fresh weights.
        tie_word_embeddings: Whether `GPTForCausalLM.out_head` shares `tok_emb`'s weight (GPT-2
            does).
        trainable_token_pos: Which position the classifier reads, as the book's
            `additional_experiments.py` flag. `flexible`: the last real token, found from the
            attention mask (padding is invisible). `last` / `first`: position -1 / 0 of the row as
            given, the book's way: the model sees padding as ordinary tokens (no padding mask,
            positions 0..n-1 over the whole row), so the row should be padded to a fixed length
            (`padded_length`).
        average_embeddings: The classifier reads the mean of the final-norm states over positions
            instead of one position (the book's `--average_embeddings`): with `last` / `first` over
            every position of the row, padding included, as the book; with `flexible` over the
            real tokens (the book ignores the flag with `flexible`).
        disable_causal_mask: Attention without the causal mask: every token sees every other (the
            book's `--disable_causal_mask`); with `flexible`, padding stays hidden.
        padded_length: With `last` / `first`, the length every row is cut or padded to (with
            `pad_token_id`, on the right) before the model reads it, as the book's `SpamDataset`
            does with its `max_length` (`--context_length`); set, the classifier gives the same
            answer whatever padding the caller used (pipeline(), a collator). None: rows as given.
        temperature: What hf_spam's predictions divide the logits by before the softmax (fitted
            by `hf-spam calibrate`); the model's own forward and `pipeline()` ignore it.
        decision_threshold: Binary models: the probability of label id 1 at or above which
            hf_spam's predictions say label 1; None decides by argmax. Like `temperature`, read
            by `predict`, `evaluate`, `serve` and the demo, not by `pipeline()`.
        exportable: Always run the models' exportable path (one padded pass, masks as tensors,
            no host synchronisation), which they otherwise take only when compiled, exported or
            traced; same logits, more work on padding.
    """

    model_type: ClassVar[str] = "hf_spam_gpt"
    keys_to_ignore_at_inference: ClassVar[list[str]] = ["past_key_values", "cache"]
    attribute_map: ClassVar[dict[str, str]] = {
        "hidden_size": "emb_dim",
        "num_hidden_layers": "n_layers",
        "num_attention_heads": "n_heads",
        "max_position_embeddings": "context_length",
    }

    vocab_size: int = 50257
    context_length: int = 1024
    emb_dim: int = 768
    n_heads: int = 12
    n_layers: int = 12
    drop_rate: float = 0.0
    qkv_bias: bool = True
    layer_norm_eps: float = 1e-5
    initializer_range: float = 0.02
    use_cache: bool = True
    bos_token_id: int | None = 50256
    eos_token_id: int | None = 50256
    pad_token_id: int | None = 50256
    tie_word_embeddings: bool = True
    trainable_token_pos: str = "flexible"
    average_embeddings: bool = False
    disable_causal_mask: bool = False
    padded_length: int | None = None
    temperature: float = 1.0
    decision_threshold: float | None = None
    exportable: bool = False

    def __post_init__(self, **kwargs: Any) -> None:
        for name in ("vocab_size", "context_length", "emb_dim", "n_heads", "n_layers"):
            if not getattr(self, name) >= 1:
                raise ValueError(f"{name} must be at least 1, got {getattr(self, name)}")
        if not 0 <= self.drop_rate < 1:
            raise ValueError(f"drop_rate must be in [0, 1), got {self.drop_rate}")
        if self.emb_dim % self.n_heads != 0:
            raise ValueError(
                f"emb_dim ({self.emb_dim}) must be divisible by n_heads ({self.n_heads})"
            )
        self._check_classifier_reading()
        if not (isinstance(self.temperature, (int, float)) and self.temperature > 0):
            raise ValueError(f"temperature must be a number > 0, got {self.temperature!r}")
        threshold = self.decision_threshold
        if threshold is not None and not (
            isinstance(threshold, (int, float)) and 0 <= threshold <= 1
        ):
            raise ValueError(
                f"decision_threshold must be between 0 and 1 or null, got {threshold!r}"
            )
        super().__post_init__(**kwargs)
        if self.id2label and not self.label2id:
            # `evaluate`'s evaluator and label-aware code read label2id; keep it in step.
            self.label2id = {label: int(i) for i, label in self.id2label.items()}

    def _check_classifier_reading(self) -> None:
        if self.trainable_token_pos not in TRAINABLE_TOKEN_POSITIONS:
            raise ValueError(
                f"trainable_token_pos={self.trainable_token_pos!r}; expected one of "
                f"{', '.join(TRAINABLE_TOKEN_POSITIONS)}"
            )
        if self.padded_length is None:
            return
        if not 1 <= self.padded_length <= self.context_length:
            raise ValueError(
                f"padded_length ({self.padded_length}) must be between 1 and context_length "
                f"({self.context_length})"
            )
        pad = self.pad_token_id
        if self.trainable_token_pos != "flexible" and not (
            pad is not None and 0 <= pad < self.vocab_size
        ):
            # The book's padding is read as tokens, so it must be one.
            raise ValueError(
                f"padded_length needs a pad_token_id within the vocabulary (0..{self.vocab_size - 1}),"
                f" got {pad}"
            )

    @property
    def head_dim(self) -> int:
        return self.emb_dim // self.n_heads

    @classmethod
    def from_preset(cls, name: str, **kwargs: Any) -> GPTConfig:
        """The configuration of one of OpenAI's GPT-2 sizes (`gpt2`, `gpt2-medium`, ...).

        A Hub id such as `openai-community/gpt2-large` is accepted too; `kwargs` override fields.
        """
        key = name.rsplit("/", 1)[-1]
        if key not in GPT2_PRESETS:
            raise ValueError(
                f"Unknown GPT-2 preset {name!r}; expected one of {sorted(GPT2_PRESETS)}"
            )
        return cls(**{**GPT2_PRESETS[key], **kwargs})


__all__ = ["GPT2_PRESETS", "TRAINABLE_TOKEN_POSITIONS", "GPTConfig"]
