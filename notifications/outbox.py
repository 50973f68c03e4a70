"""The outbox: events written with the change records that cause them (completed below)."""


def connect() -> None:
    pass
