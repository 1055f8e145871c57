"""The Hugging Face Hub: the model card (its values and rendering), one upload path for the model
and the Space, summaries."""
