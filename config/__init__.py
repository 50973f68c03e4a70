"""The project package: settings, the root URLconf that wires every app's URLs, and the WSGI/ASGI entry
points. It sits on top of every app and nothing imports it (see the README's architecture section)."""
