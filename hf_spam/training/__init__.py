"""Fine-tuning with Trainer: the arguments worked out once, the trainable-layer policies, the
trainer, the run and its outputs."""
