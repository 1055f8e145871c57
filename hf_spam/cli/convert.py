"""`hf-spam convert`: an OpenAI GPT-2 checkpoint as a `save_pretrained` folder of the book's GPT.

    hf-spam convert --source openai-community/gpt2 --output_dir gpt2-book
    hf-spam convert --source ./gpt2/model.safetensors --output_dir spam-init \
        --head classification --labels ham,spam
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from ..constants import SAFETENSORS_NAME
from ..errors import UsageError
from ..files import atomic_output_dir, check_output_dir, writing
from .arguments import parser_for

HEADS = ("causal_lm", "classification")


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
    head: str = field(
        default="causal_lm",
        metadata={
            "help": "causal_lm (GPT-2's tied LM head) or classification (a fresh head)",
            "choices": list(HEADS),
        },
    )
    labels: str = field(
        default="ham,spam",
        metadata={"help": "Comma-separated class names, for --head classification"},
    )
    with_tokenizer: bool = field(
        default=True, metadata={"help": "Save the GPT-2 tokenizer beside the weights."}
    )
    overwrite_output_dir: bool = field(default=False, metadata={"help": "Replace output_dir."})

    def __post_init__(self) -> None:
        check_output_dir(self.output_dir, self.overwrite_output_dir)
        if self.head == "classification":
            self.label_names  # noqa: B018 - checks them before any work

    @property
    def label_names(self) -> list[str]:
        names = [name.strip() for name in self.labels.split(",") if name.strip()]
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
    from ..weights import load_openai_gpt2

    (args,) = parser_for("convert", (ConvertArguments,), __doc__.split("\n")[0]).parse(argv)
    heads = {"causal_lm": GPTForCausalLM, "classification": GPTForSequenceClassification}
    kwargs = {}
    if args.head == "classification":
        names = args.label_names
        kwargs = {"num_labels": len(names), "id2label": dict(enumerate(names))}
    out = Path(args.output_dir)
    kept = f"{out} is left as it was"
    with atomic_output_dir(out, args.overwrite_output_dir) as tmp:
        model = load_openai_gpt2(heads[args.head], args.source, **kwargs)
        writing(out / SAFETENSORS_NAME, lambda: model.save_pretrained(tmp), kept)
        if args.with_tokenizer:
            from ..data import get_tokenizer

            tokenizer = get_tokenizer(model.config.context_length)
            writing(out / "tokenizer.json", lambda: tokenizer.save_pretrained(tmp), kept)
    print(
        f"Wrote {type(model).__name__} ({model.num_parameters():,} parameters, "
        f"{model.config.n_layers} blocks, emb_dim {model.config.emb_dim}) to {args.output_dir}"
    )
    return 0
