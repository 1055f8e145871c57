"""The book's GPT as a transformers model: configuration, modeling, OpenAI's GPT-2 weights mapped
onto it, the book's random initialisation, LoRA."""
