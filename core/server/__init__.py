"""The OpenAI-compatible local server (Starlette on uvicorn), driving the engine worker."""
