"""``export_audit``: one tenant's change records as JSON Lines, checkable off-box with
``verify_audit --file`` or ``python audit/chain.py`` (see README, "Archiving and checking the audit
trail elsewhere")."""

import json
import os
from datetime import datetime, time

from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone
from django.utils.dateparse import parse_date, parse_datetime

from arm.models import Tenant
from audit import chain
from audit.models import CHAIN_COLUMNS, ChainHead, ChangeRecord, chain_fields


def _since(value: str):
    """``--since``: a seq (``120``) or an ISO date / datetime (``2026-11-01``, ``2026-11-01T12:00:00Z``)."""
    if value.isdigit():
        return int(value)
    moment = parse_datetime(value)
    if moment is None:
        day = parse_date(value)
        if day is None:
            raise CommandError(f"--since takes a seq or an ISO date or datetime, not {value!r}.", returncode=2)
        moment = datetime.combine(day, time.min)
    return moment if timezone.is_aware(moment) else timezone.make_aware(moment, timezone.get_default_timezone())


def _line(item: dict) -> str:
    # ASCII only: no raw U+2028 / U+0085 inside a line for tools that split lines on them
    return json.dumps(item, ensure_ascii=True, separators=(",", ":")) + "\n"


class Command(BaseCommand):
    help = (
        "Write one tenant's change records as JSON Lines (a header with the chain head, one record per line "
        "in seq order with every hashed field, a trailer), up to the head read when the export starts."
    )

    def add_arguments(self, parser):
        parser.add_argument("--tenant", required=True, help="tenant slug")
        parser.add_argument(
            "--since", help="start at this seq, or at the first record created at or after this ISO date"
        )
        parser.add_argument("--output", help="file to write (default: standard output)")

    def handle(self, *args, tenant, since, output, **options):
        tenant_obj = Tenant.objects.filter(slug=tenant).first()
        if tenant_obj is None:
            raise CommandError(f"No tenant with slug {tenant!r}.", returncode=2)
        since_value = _since(since) if since else None
        # The head first: the export is records 1 (or --since)..head.last_seq, a range writers cannot change.
        head = ChainHead.objects.filter(tenant_id=tenant_obj.pk).values_list("last_seq", "last_hash").first()
        last_seq, last_hash = head or (0, chain.GENESIS_HASH)
        records = ChangeRecord.objects.filter(tenant_id=tenant_obj.pk, seq__lte=last_seq)
        if isinstance(since_value, int):
            first_seq = max(since_value, 1)
        elif since_value is not None:
            # a contiguous range from the first record at or after the moment (created_at follows seq)
            later = records.filter(created_at__gte=since_value).order_by("seq").values_list("seq", flat=True)
            first_seq = later.first() or last_seq + 1
        else:
            first_seq = 1
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
        }
        handle = open(output, "w", encoding="utf-8") if output else None  # closed below
        out = handle or self.stdout
        try:
            out.write(_line(header))
            count, first, last = 0, None, None
            rows = records.filter(seq__gte=first_seq).order_by("seq").values_list(*CHAIN_COLUMNS)
            for row in rows.iterator(chunk_size=2000):
                fields = chain_fields(**dict(zip(CHAIN_COLUMNS, row, strict=True)))
                out.write(_line({"type": "record", **{name: fields[name] for name in chain.RECORD_FIELDS}}))
                count, first, last = count + 1, first or fields["seq"], fields["seq"]
            out.write(_line({"type": "trailer", "records": count, "first_seq": first, "last_seq": last}))
        finally:
            if handle:
                handle.close()
        if output:
            self.stderr.write(
                f"{tenant_obj.slug}: {count} record(s) #{first}..#{last} written to {os.path.abspath(output)} "
                f"(chain head #{last_seq} {last_hash})"
            )
