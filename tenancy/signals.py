"""What tenancy tells the audit trail about people's accounts, without importing ``audit`` (which sits
above it): things that happen to an account (deactivated, a set-password link made, a failed sign-in)
are no save of a recorded model, so no ``post_save`` records them. ``audit`` connects its receivers in
``AuditConfig.ready`` (``audit.accounts``).

Django signals call their receivers synchronously, inside the sender's transaction, and a receiver's
exception reaches the sender: a record that cannot be written fails the change it describes.
"""

from django.dispatch import Signal

#: One record about ``user``'s account in ``tenant``: ``event_type`` (one ``Membership.audit`` declares),
#: ``payload``, ``actor``. Sent once per tenant the record goes to, in the order they are written.
account_event = Signal()

#: Asked with ``user``: the id of the latest set-password link made for them ('' when none was), which
#: ``tenancy.services.link_tokens`` puts in every token so a new link makes the older ones invalid.
latest_password_link = Signal()
