"""The Models page: the local library, Hugging Face search and the download queue."""
