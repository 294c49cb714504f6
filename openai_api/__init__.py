"""The OpenAI-compatible gateway: validation, one controller call, byte relay, failover.

Shaped like every service: `settings.py` (GatewaySettings, `CORRAL_API_*`; `cli.py` generates
the command line from it), `state.py` (what the lifespan opens: `open_state`), `app.py`
(`create_app`), `routes.py`, domain modules. It never touches templates or model code, and
imports no other service.
"""
