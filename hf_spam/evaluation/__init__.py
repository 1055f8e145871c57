"""Evaluation reports: evaluate's text-classification evaluator over labelled data, one or more
models."""
