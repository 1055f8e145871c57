"""`hf-spam convert`: an OpenAI GPT-2 checkpoint as a `save_pretrained` folder of the book's GPT.

    hf-spam convert --source openai-community/gpt2 --output_dir gpt2-book
    hf-spam convert --source ./gpt2/model.safetensors --output_dir spam-init \
        --head classification --labels ham,spam
    hf-spam convert --source ./my-gpt2-classifier --output_dir spam-book   # its head and labels

A `GPT2ForSequenceClassification` checkpoint converts to the classifier by default, its head
(`score.weight`) and labels kept; the tokenizer saved beside the weights is the checkpoint's own
when it has tokenizer files, else GPT-2's.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from ..constants import SAFETENSORS_NAME
from ..errors import UsageError
from ..files import atomic_output_dir, check_output_dir, writing
from .arguments import parser_for

HEADS = ("causal_lm", "classification")
DEFAULT_LABELS = ("ham", "spam")


@dataclass
class ConvertArguments:
    """The GPT-2 checkpoint to convert, the head to give it, and the folder to write."""

    _argument_group_name = "conversion"

    source: str = field(
        metadata={
            "help": "Hub id (openai-community/gpt2[-medium|-large|-xl]), folder or .safetensors"
        }
    )
    output_dir: str = field(metadata={"help": "Folder to write (refused if not empty)."})
    head: str | None = field(
        default=None,
        metadata={
            "help": "causal_lm (GPT-2's tied LM head) or classification (a fresh head, or the "
            "checkpoint's score.weight when it has one and the labels agree); default: "
            "classification for a GPT2ForSequenceClassification checkpoint, else causal_lm",
            "choices": list(HEADS),
        },
    )
    labels: str | None = field(
        default=None,
        metadata={
            "help": "Comma-separated class names, for --head classification (default: the "
            "checkpoint's classes if it is a classifier, else ham,spam)"
        },
    )
    with_tokenizer: bool = field(
        default=True,
        metadata={
            "help": "Save the tokenizer beside the weights (the checkpoint's own files, else "
            "GPT-2's)."
        },
    )
    overwrite_output_dir: bool = field(default=False, metadata={"help": "Replace output_dir."})

    def __post_init__(self) -> None:
        check_output_dir(self.output_dir, self.overwrite_output_dir)
        if self.labels is not None:
            self.label_names  # noqa: B018 - checks them before any work

    @property
    def label_names(self) -> list[str]:
        names = [name.strip() for name in (self.labels or "").split(",") if name.strip()]
        if len(names) < 2:
            raise UsageError(
                f"--labels {self.labels!r}: give at least two class names, e.g. ham,spam"
            )
        duplicates = sorted({name for name in names if names.count(name) > 1})
        if duplicates:
            raise UsageError(f"--labels {self.labels!r}: {', '.join(duplicates)} given twice")
        return names


def run(argv: list[str]) -> int:
    from .. import GPTForCausalLM, GPTForSequenceClassification
    from ..model.weights import checkpoint_folder, has_classification_head, load_openai_gpt2

    (args,) = parser_for("convert", (ConvertArguments,), __doc__.split("\n")[0]).parse(argv)
    heads = {"causal_lm": GPTForCausalLM, "classification": GPTForSequenceClassification}
    has_score = has_classification_head(args.source)
    head = args.head or ("classification" if has_score else "causal_lm")
    kwargs = {}
    if head == "classification" and (args.labels is not None or not has_score):
        names = args.label_names if args.labels is not None else list(DEFAULT_LABELS)
        kwargs = {"num_labels": len(names), "id2label": dict(enumerate(names))}
    out = Path(args.output_dir)
    kept = f"{out} is left as it was"
    with atomic_output_dir(out, args.overwrite_output_dir) as tmp:
        model, info = load_openai_gpt2(heads[head], args.source, output_loading_info=True, **kwargs)
        writing(out / SAFETENSORS_NAME, lambda: model.save_pretrained(tmp), kept)
        if args.with_tokenizer:
            from ..data import check_tokenizer_fits, load_tokenizer

            folder = checkpoint_folder(args.source)
            tokenizer = load_tokenizer(folder, model.config.context_length)
            check_tokenizer_fits(tokenizer, model.config.vocab_size, args.source)
            writing(out / "tokenizer.json", lambda: tokenizer.save_pretrained(tmp), kept)
    origin = ""
    if head == "classification":
        labels = ", ".join(str(model.config.id2label[i]) for i in range(model.config.num_labels))
        kept_head = "out_head.weight" not in info["missing_keys"]
        origin = f"; head {'from the checkpoint' if kept_head else 'fresh'}, labels {labels}"
    print(
        f"Wrote {type(model).__name__} ({model.num_parameters():,} parameters, "
        f"{model.config.n_layers} blocks, emb_dim {model.config.emb_dim}{origin}) to "
        f"{args.output_dir}"
    )
    return 0
