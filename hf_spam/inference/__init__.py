"""Using a trained classifier: loading and checking a model folder, bulk prediction, text files in
and predictions out."""
