"""``audit_keys``: make an Ed25519 signing key for audit checkpoints, or show the public keys document
ARM publishes at ``/.well-known/arm-audit-keys.json`` (README, "Auditors: proving the audit trail")."""

import json
import os

from django.core.exceptions import ImproperlyConfigured

from arm.commandutils import ArmCommand, usage_error
from arm.validators import terminal_safe
from audit import signing
from audit.keys import configured_keyring


class Command(ArmCommand):
    help = (
        "generate --output PATH: write a new Ed25519 private key (PEM, mode 0600) and print its key id. "
        "show: print the public keys document (the active key and the retired ones) as published."
    )

    def add_arguments(self, parser):
        sub = parser.add_subparsers(dest="action", required=True)
        generate = sub.add_parser("generate", help="write a new private key")
        generate.add_argument("--output", required=True, help="the PEM file to create (never overwritten)")
        sub.add_parser("show", help="print the public keys document")

    def handle(self, *args, action, **options):
        if action == "generate":
            return self._generate(options["output"])
        try:
            document = configured_keyring().document()
        except ImproperlyConfigured as exc:
            raise usage_error(str(exc)) from None
        self.stdout.write(json.dumps(document, indent=2))

    def _generate(self, output: str) -> None:
        pem = signing.generate_private_key_pem()
        try:
            descriptor = os.open(output, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            raise usage_error(f"{terminal_safe(output)} exists; a key file is never overwritten.") from None
        except OSError as exc:
            raise usage_error(f"Cannot create {terminal_safe(output)}: {exc.strerror}") from None
        with os.fdopen(descriptor, "wb") as handle:
            handle.write(pem)
        key = signing.load_private_key(pem).public_key()
        self.stdout.write(
            f"Wrote {output} (Ed25519, key id {signing.key_id(key)}). Keep it where the database's administrators "
            f"cannot read it; sign with it: ARM_AUDIT_SIGNING_KEY_FILE={os.path.abspath(output)}"
        )
