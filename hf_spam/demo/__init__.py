"""The Gradio app for a trained classifier."""
