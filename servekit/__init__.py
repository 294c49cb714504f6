"""What every service shares, below all of them: the uvicorn runner, HTTP glue (OpenAI error
envelopes, body parsing, disconnects), Prometheus metrics, paths, logging and settings-driven
command lines.

It imports `protocol` and third-party libraries only: never a service, `store` or `corral`.
"""
