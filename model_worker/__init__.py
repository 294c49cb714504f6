"""A model worker: one model, one backend, served as a small OpenAI server of its own.

Shaped like every service: `settings.py` (WorkerSettings, `CORRAL_WORKER_*`; `cli.py` generates
the command line from it), `state.py` (what the lifespan opens: `open_state`), `app.py`
(`create_app`), `routes.py`, domain modules. Backends are flat files behind
`backends.base.Backend`, listed in `backends.BACKENDS`. It never routes or authenticates, and
imports no other service.
"""
