"""``export_audit``: one tenant's change records as JSON Lines that prove their own range, checkable off-box
with ``verify_audit --file`` or ``python audit/chain.py`` (README, "Auditors: proving the audit trail").

With a signing key configured, a checkpoint is signed at the head first (``checkpoint_take``), so the
export's end is covered by a signature; an export that does not start at record #1 starts right after a
signed checkpoint (``--since`` is rounded down to one), so its start is too. The file carries the signed
checkpoints it spans and the public keys.

Exit status (``arm.commandutils.ExitCode``): 0 written; 3 written, but the chain does not extend its newest
signed checkpoint (the head could not be signed: the warning says why, and ``verify_audit --full`` names
the record); 2 bad usage (an unknown tenant, a bad ``--since``, an output file that cannot be created);
1 the command could not finish (a reader that left, ``| head``, ends it quietly). Progress on stderr on a
terminal, or with ``--progress``."""

import json
import os
from datetime import datetime, time

from django.core.exceptions import ImproperlyConfigured
from django.utils import timezone
from django.utils.dateparse import parse_date, parse_datetime

from arm.commandutils import ArmCommand, problem_found, usage_error
from arm.validators import terminal_safe
from audit import chain
from audit.keys import configured_keyring
from audit.models import CHAIN_COLUMNS, ChainHead, ChangeRecord, SignedCheckpoint, chain_fields
from audit.services import ChainNotExtended, checkpoint_take
from tenancy.commandutils import get_tenant


def _since(value: str):
    """``--since``: a seq (``120``) or an ISO date / datetime (``2026-11-01``, ``2026-11-01T12:00:00Z``)."""
    if value.isdigit():
        return int(value)
    moment = parse_datetime(value)
    if moment is None:
        day = parse_date(value)
        if day is None:
            raise usage_error(terminal_safe(f"--since takes a seq or an ISO date or datetime, not {value!r}."))
        moment = datetime.combine(day, time.min)
    return moment if timezone.is_aware(moment) else timezone.make_aware(moment, timezone.get_default_timezone())


def _line(item: dict) -> str:
    # ASCII only: no raw U+2028 / U+0085 inside a line for tools that split lines on them
    return json.dumps(item, ensure_ascii=True, separators=(",", ":")) + "\n"


class Command(ArmCommand):
    help = (
        "Write one tenant's change records as JSON Lines (a header with the chain head and the public keys, "
        "one record per line in seq order each followed by the signed checkpoint taken at it, a trailer), up to "
        "the head read (and signed, when a key is configured) when the export starts. Exit 3 when the chain "
        "does not extend its newest signed checkpoint (the export is still written), 2 on bad usage."
    )
    progress_option = True

    def add_arguments(self, parser):
        parser.add_argument("--tenant", required=True, help="tenant slug")
        parser.add_argument(
            "--since",
            help="start at this seq, or at the first record created at or after this ISO date; rounded down to "
            "just after the signed checkpoint before it, so the export proves its start",
        )
        parser.add_argument("--output", help="file to write (default: standard output)")

    def handle(self, *args, tenant, since, output, **options):
        tenant_obj = get_tenant(tenant)
        since_value = _since(since) if since else None
        try:
            keyring = configured_keyring()
        except ImproperlyConfigured as exc:
            raise usage_error(str(exc)) from None
        self.not_extended = False
        last_seq, last_hash = self._head(tenant_obj, keyring)
        records = ChangeRecord.objects.filter(tenant_id=tenant_obj.pk, seq__lte=last_seq)
        first_seq = self._first_seq(tenant_obj, records, since_value, last_seq)
        checkpoints = list(
            SignedCheckpoint.objects.filter(tenant_id=tenant_obj.pk, seq__gte=first_seq - 1, seq__lte=last_seq)
            .order_by("seq")
            .iterator()
        )
        header = {
            "type": "header",
            "format": chain.EXPORT_FORMAT,
            "format_version": chain.EXPORT_FORMAT_VERSION,
            "hash_rule": chain.HASH_RULE,
            "tenant": str(tenant_obj.pk),
            "tenant_slug": tenant_obj.slug,
            "exported_at": timezone.now().isoformat(),
            "since": since,
            "head": {"last_seq": last_seq, "last_hash": last_hash},
            "public_keys": keyring.document(),
            "frontier": self._frontier(records, first_seq, checkpoints),
        }
        try:
            handle = open(output, "w", encoding="utf-8") if output else None  # closed below
        except OSError as exc:
            raise usage_error(terminal_safe(f"Cannot write {output}: {exc.strerror or exc}.")) from None
        progress = self.progress(max(last_seq - first_seq + 1, 0), f"Exporting {terminal_safe(tenant_obj.slug)}")
        try:
            # a reader that leaves (``| head``) raises BrokenPipeError here: ArmCommand ends quietly
            count, first, last = self._write(
                handle or self.stdout, header, records, first_seq, checkpoints, tenant_obj, progress
            )
        finally:
            if handle:
                handle.close()
        progress.finish()
        if output:
            self.stderr.write(
                f"{terminal_safe(tenant_obj.slug)}: {count} record(s) #{first}..#{last} and {len(checkpoints)} signed "
                f"checkpoint(s) written to {terminal_safe(os.path.abspath(output))} (chain head #{last_seq} "
                f"{last_hash})"
            )
        if self.not_extended:
            problem_found()

    def _head(self, tenant_obj, keyring) -> tuple[int, str]:
        """The export's end: the head as signed now (with a key), else as read. Read first, so the export is a
        range writers cannot change."""
        if keyring.signer is not None:
            try:
                checkpoint = checkpoint_take(tenant_obj, keyring=keyring).checkpoint
            except ChainNotExtended as exc:
                self.not_extended = True  # the export is still written (evidence), and the run exits 3
                self.stderr.write(
                    f"BROKEN {terminal_safe(tenant_obj.slug)}: the head was not signed ({terminal_safe(exc.message)}); "
                    "the export's end is covered by no signature"
                )
            else:
                return checkpoint.seq, checkpoint.hash
        else:
            self.stderr.write(
                "warning: no audit signing key is configured: the export's end is covered by no signed checkpoint "
                "(verify it with --expect-head SEQ:HASH)"
            )
        head = ChainHead.objects.filter(tenant_id=tenant_obj.pk).values_list("last_seq", "last_hash").first()
        return head or (0, chain.GENESIS_HASH)

    def _first_seq(self, tenant_obj, records, since_value, last_seq: int) -> int:
        if since_value is None:
            return 1
        if isinstance(since_value, int):
            asked = max(since_value, 1)
        else:
            # a contiguous range from the first record at or after the moment (created_at follows seq)
            later = records.filter(created_at__gte=since_value).order_by("seq").values_list("seq", flat=True)
            asked = later.first() or last_seq + 1
        asked = min(asked, last_seq + 1)
        if asked == 1:
            return 1
        anchor = (
            SignedCheckpoint.objects.filter(tenant_id=tenant_obj.pk, seq__lt=asked)
            .order_by("-seq")
            .values_list("seq", flat=True)
            .first()
        )
        if anchor is None:
            self.stderr.write(
                f"warning: no signed checkpoint before #{asked}: nothing in the file anchors its start (verify it "
                f"with --anchor {asked - 1}:HASH, the hash of record #{asked - 1} from an earlier export)"
            )
            return asked
        return anchor + 1

    @staticmethod
    def _frontier(records, first_seq: int, checkpoints) -> dict | None:
        """The Merkle tree of records 1..first_seq-1 as its perfect subtrees, so roots of the checkpoints
        inside a later-starting export can be recomputed (the verifier checks it against the anchor's root)."""
        if first_seq == 1 or not checkpoints or checkpoints[0].seq != first_seq - 1:
            return None
        frontier = chain.MerkleFrontier()
        hashes = records.filter(seq__lt=first_seq).order_by("seq").values_list("hash", flat=True)
        for digest in hashes.iterator(chunk_size=5000):
            frontier.append(bytes.fromhex(digest))
        return {"seq": frontier.size, "subtrees": [h.hex() for h in frontier.subtrees()]}

    @staticmethod
    def _write(
        out, header, records, first_seq, checkpoints, tenant_obj, progress
    ) -> tuple[int, int | None, int | None]:
        out.write(_line(header))
        signed = iter(checkpoints)
        pending = next(signed, None)

        def checkpoints_at(seq: int):
            nonlocal pending
            while pending is not None and pending.seq <= seq:
                out.write(_line(pending.document(tenant_obj.slug)))
                pending = next(signed, None)

        checkpoints_at(first_seq - 1)
        count, first, last = 0, None, None
        rows = records.filter(seq__gte=first_seq).order_by("seq").values_list(*CHAIN_COLUMNS)
        for row in rows.iterator(chunk_size=2000):
            fields = chain_fields(**dict(zip(CHAIN_COLUMNS, row, strict=True)))
            out.write(_line({"type": "record", **{name: fields[name] for name in chain.RECORD_FIELDS}}))
            count, first, last = count + 1, first or fields["seq"], fields["seq"]
            checkpoints_at(last)
            if count % 1000 == 0:
                progress.update(count)
        out.write(_line({"type": "trailer", "records": count, "first_seq": first, "last_seq": last}))
        out.flush()
        progress.update(count)
        return count, first, last
