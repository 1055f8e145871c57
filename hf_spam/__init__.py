"""hf_spam: the from-scratch GPT of *Build a Large Language Model (From Scratch)* as a
Hugging Face model, fine-tuned for text classification."""
