"""Convert an OpenAI GPT-2 checkpoint into a `save_pretrained` folder of the book's GPT.

    python scripts/convert_gpt2.py --source openai-community/gpt2 --output_dir gpt2-book
    python scripts/convert_gpt2.py --source ./gpt2/model.safetensors --output_dir spam-init \
        --head classification --labels ham,spam
"""

from __future__ import annotations

from dataclasses import dataclass, field

from transformers import HfArgumentParser

from hf_spam import GPTForCausalLM, GPTForSequenceClassification
from hf_spam.files import atomic_output_dir

HEADS = {"causal_lm": GPTForCausalLM, "classification": GPTForSequenceClassification}


@dataclass
class ConvertArguments:
    source: str = field(
        metadata={
            "help": "Hub id (openai-community/gpt2[-medium|-large|-xl]), folder or .safetensors"
        }
    )
    output_dir: str = field(metadata={"help": "Folder to write (refused if not empty)."})
    head: str = field(
        default="causal_lm",
        metadata={"help": "causal_lm (GPT-2's tied LM head) or classification (a fresh head)"},
    )
    labels: str = field(
        default="ham,spam",
        metadata={"help": "Comma-separated class names, for --head classification"},
    )
    with_tokenizer: bool = field(
        default=True, metadata={"help": "Save the GPT-2 tokenizer beside the weights."}
    )
    overwrite_output_dir: bool = field(default=False, metadata={"help": "Replace output_dir."})


def main(argv: list[str] | None = None) -> None:
    (args,) = HfArgumentParser(ConvertArguments).parse_args_into_dataclasses(args=argv)
    if args.head not in HEADS:
        raise SystemExit(f"--head must be one of {sorted(HEADS)}, got {args.head!r}")
    kwargs = {}
    if args.head == "classification":
        names = [name.strip() for name in args.labels.split(",") if name.strip()]
        kwargs = {"num_labels": len(names), "id2label": dict(enumerate(names))}
    with atomic_output_dir(args.output_dir, args.overwrite_output_dir) as tmp:
        model = HEADS[args.head].from_openai_gpt2(args.source, **kwargs)
        model.save_pretrained(tmp)
        if args.with_tokenizer:
            from hf_spam.data import get_tokenizer

            get_tokenizer(model.config.context_length).save_pretrained(tmp)
    print(
        f"Wrote {type(model).__name__} ({model.num_parameters():,} parameters, "
        f"{model.config.n_layers} blocks, emb_dim {model.config.emb_dim}) to {args.output_dir}"
    )


if __name__ == "__main__":
    main()
