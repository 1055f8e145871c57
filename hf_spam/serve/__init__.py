"""`hf-spam serve`: a trained classifier over HTTP, in the protocols clients already speak."""
