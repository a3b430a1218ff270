"""Shared UI pieces: demo descriptors, reusable Gradio components, the core's own demos."""
