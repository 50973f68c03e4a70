"""A Slack incoming-webhook body for an event (``render``): a ``text`` fallback (notifications, screen
readers) and Block Kit ``blocks``: the headline, up to ten facts, a button to the page to act on (a
request in the Approval center, a version, the Cost page) and the event's type and webhook id.

Slack reads ``&``, ``<`` and ``>`` as markup in mrkdwn text, so every value from the event is escaped
(a tool named ``<!channel>`` must not ping a channel)."""

from __future__ import annotations

from notifications.messages import describe_event

MAX_FIELDS = 10  # Slack's limit per section block
MAX_FIELD_CHARS = 1900  # a field's text may not exceed 2000 characters


def escape(text: str) -> str:
    return str(text).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def render(event, *, tenant_name: str = "") -> dict:
    """The JSON body to POST to a Slack incoming webhook for ``event``."""
    message = describe_event(event, tenant_name=tenant_name)
    headline = escape(message.headline)
    text = f"{headline} <{escape(message.url)}|{escape(message.action)}>" if message.url else headline
    blocks: list[dict] = [{"type": "section", "text": {"type": "mrkdwn", "text": f"*{_clip(headline, 2900)}*"}}]
    if message.facts:
        blocks.append(
            {
                "type": "section",
                "fields": [
                    {"type": "mrkdwn", "text": _clip(f"*{escape(label)}*\n{escape(value)}", MAX_FIELD_CHARS)}
                    for label, value in message.facts[:MAX_FIELDS]
                ],
            }
        )
    if message.url:
        blocks.append(
            {
                "type": "actions",
                "elements": [
                    {
                        "type": "button",
                        "text": {"type": "plain_text", "text": message.action},
                        "url": message.url,
                        "action_id": "arm-open",
                        **({"style": "primary"} if event.type == "approval.requested" else {}),
                    }
                ],
            }
        )
    blocks.append(
        {
            "type": "context",
            "elements": [{"type": "mrkdwn", "text": f"ARM · `{escape(event.type)}` · {event.webhook_id}"}],
        }
    )
    return {"text": text, "blocks": blocks}
