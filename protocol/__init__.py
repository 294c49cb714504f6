"""Shared vocabulary of Corral: OpenAI API schemas, control-plane schemas, the error envelope.

This package is imported by every service, the web UI and the tests, so it stays light: pydantic
only, no torch, no fastapi, no I/O.
"""
