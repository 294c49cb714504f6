"""The web UI: chat, the arena (anonymous battles and side-by-side) and the leaderboard.

A Gradio app that speaks only to the gateway, as an OpenAI client; votes and finished
conversations go to the event store (embedded file or Redis).

Shaped like every service: `settings.py` (WebUISettings, `CORRAL_WEBUI_*`; `cli.py` generates
the command line from it), `state.py` (what the lifespan opens: a `WebUI`), `app.py`
(`create_app`, the page), the tabs (`arena_tab.py`, `chat_tab.py`), domain modules. It never
talks to workers directly, and imports no other service.
"""
