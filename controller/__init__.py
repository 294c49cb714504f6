"""The controller: worker registry with TTL liveness, dispatch policies, in-flight accounting.

Shaped like every service: `settings.py` (ControllerSettings, `CORRAL_CONTROLLER_*`; `cli.py`
generates the command line from it), `state.py` (what the lifespan opens: `open_state`),
`app.py` (`create_app`), `routes.py`, domain modules. It never touches tokens or prompts, and
imports no other service.
"""
