"""The web chat: a page in the browser over the same engine as Telegram, Discord and the terminal.

Why a small aiohttp app and a hand-written page, not Gradio (the usual choice for model demos): the page needs
buttons under each result that press the engine's own buttons, a before/after slider, a clickable history and step
progress pushed while an edit runs. Gradio's chat component has none of these per message, and it would add a large
dependency tree beside the one web server editbot already has (aiohttp serves /healthz and /metrics). Here the page is
three small files shipped in the package (assets/: HTML, CSS, vanilla JavaScript, and an SVG icon; no CDN, no build
step, works offline), progress comes as server-sent events, and every action is a message to the engine.

    server.py    the routes, the renderer of Replies into events, `serving()` for bot/platforms.py
    sessions.py  the signed cookie that names a browser, and what a reload redraws
"""
