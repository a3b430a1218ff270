"""Text encoder and FAISS index with a sidecar table of ids and payloads."""
