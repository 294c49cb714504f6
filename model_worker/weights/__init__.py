"""Offline weight tools behind `corral model`: apply a delta to a base, merge a LoRA adapter.

They turn what the LLaMA ecosystem publishes (delta weights, LoRA adapters) into an ordinary
checkpoint folder that any backend serves. Nothing here runs in a serving process.
"""
