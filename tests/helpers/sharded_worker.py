"""A few training steps of a tiny classifier, alone or sharded across a torchrun job (FSDP2;
FSDP1 needs an accelerator), then the final save's gather: the main process writes the
merged weights (and, for LoRA, the adapter folder) into `out`.

Run: `python -m torch.distributed.run --nproc_per_node 2 sharded_worker.py MODE POLICY OUT`,
MODE `fsdp2` or `none` (one process, no wrapper). Each rank trains on its half of one
fixed batch, so the averaged gradients are the full batch's, as in one process.
"""

from __future__ import annotations

import sys
from pathlib import Path

import torch
import torch.distributed as dist
from safetensors.torch import save_file

from hf_spam import GPTConfig, GPTForSequenceClassification
from hf_spam.model.lora import merge_lora, save_adapter
from hf_spam.training.model_arguments import ModelArguments
from hf_spam.training.outputs import gather_full_model, meta_skeleton
from hf_spam.training.policies import apply_trainable_layers

CONFIG = dict(vocab_size=120, context_length=16, emb_dim=32, n_heads=4, n_layers=3,
              drop_rate=0.0, num_labels=2)  # fmt: skip


def wrap(model: torch.nn.Module, mode: str) -> torch.nn.Module:
    if mode == "fsdp2":
        from torch.distributed.device_mesh import init_device_mesh
        from torch.distributed.fsdp import fully_shard

        mesh = init_device_mesh("cpu", (dist.get_world_size(),))
        for module in model.modules():
            if type(module).__name__ == "TransformerBlock":
                fully_shard(module, mesh=mesh)
        return fully_shard(model, mesh=mesh)
    return model


def main(mode: str, policy: str, out: Path) -> None:
    if mode != "none":
        dist.init_process_group("gloo")
    rank, world = (dist.get_rank(), dist.get_world_size()) if mode != "none" else (0, 1)
    torch.manual_seed(0)
    model = GPTForSequenceClassification(GPTConfig(**CONFIG))
    model_args = ModelArguments(trainable_layers=policy, lora_rank=4, lora_alpha=2.0)
    model = apply_trainable_layers(model, model_args, seed=1)
    skeleton = meta_skeleton(model)
    wrapped = wrap(model, mode)
    generator = torch.Generator().manual_seed(2)
    ids = torch.randint(0, CONFIG["vocab_size"], (8, 12), generator=generator)
    labels = torch.randint(0, 2, (8,), generator=generator)
    params = [p for p in wrapped.parameters() if p.requires_grad]
    # SGD: AdamW would turn noise-sized gradients (a key bias's) into full-sized steps.
    optimizer = torch.optim.SGD(params, lr=0.02)
    for _ in range(3):
        logits = wrapped(input_ids=ids[rank::world]).logits
        torch.nn.functional.cross_entropy(logits, labels[rank::world]).backward()
        optimizer.step()
        optimizer.zero_grad()
    full = gather_full_model(wrapped, skeleton, rank == 0)
    if rank == 0:
        if policy == "lora":
            save_adapter(full, out / f"adapter-{mode}", "base")
            full = merge_lora(full)
        save_file({k: v.contiguous() for k, v in full.state_dict().items()},
                  str(out / f"{mode}.safetensors"))  # fmt: skip
    if mode != "none":
        dist.destroy_process_group()


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], Path(sys.argv[3]))
