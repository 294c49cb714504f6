"""A model worker: one model, one backend, served as a small OpenAI server of its own."""
