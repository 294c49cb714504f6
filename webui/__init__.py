"""The web UI: chat, the arena (anonymous battles and side-by-side) and the leaderboard.

A Gradio app that speaks only to the gateway, as an OpenAI client; votes and finished
conversations go to the event store (embedded file or Redis).
"""
