"""Writing to and verifying the audit chain. Records are appended inside the transaction of the change
they describe, so a rolled-back change leaves no record: the receivers of ``audit.recording`` call
``record_change`` for every write of a recorded model, services call it for events that are not a write
of one (a sign-in failure, a sweep's counts, a usage batch), and ``record_changes`` appends many records
in one chain extension (bulk writes, data migrations). Every record's name is one a model declares
(``audit.choices.EventType``)."""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime
from functools import partial

from django.core.serializers.json import DjangoJSONEncoder
from django.db import IntegrityError, transaction
from django.db.models import Max
from django.utils import timezone

from arm.errors import Conflict
from audit import chain, hooks, signing
from audit.choices import EventType
from audit.keys import configured_keyring
from audit.models import (
    CHAIN_COLUMNS,
    GENESIS_HASH,
    ChainCheckpoint,
    ChainHead,
    ChangeRecord,
    SignedCheckpoint,
    chain_fields,
)
from tenancy.context import Actor, current_actor


def to_json(value):
    """Plain JSON types only (UUIDs, decimals and datetimes become strings) so hashes are stable. Numbers
    RFC 8785 cannot canonicalize (integers beyond ±(2^53-1), NaN, infinities) become strings too, so a
    record can always be chained."""
    return _i_json(json.loads(json.dumps(value, cls=DjangoJSONEncoder)))


def _i_json(value):
    if isinstance(value, dict):
        return {key: _i_json(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_i_json(item) for item in value]
    if isinstance(value, bool):
        return value
    if isinstance(value, int) and abs(value) > 2**53 - 1:
        return str(value)
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    return value


def diff(before: dict, after: dict) -> dict:
    """{field: {"before": x, "after": y}} for the fields that changed."""
    before, after = to_json(before), to_json(after)
    return {
        key: {"before": before.get(key), "after": after.get(key)}
        for key in sorted(set(before) | set(after))
        if before.get(key) != after.get(key)
    }


def record_change(
    *,
    tenant,
    event_type: str,
    target,
    payload: dict | None = None,
    actor: Actor | None = None,
    target_type: str | None = None,
) -> ChangeRecord:
    """Append one record to ``tenant``'s chain.

    The chain head row is locked first (SELECT ... FOR UPDATE on PostgreSQL; SQLite's transactions
    begin IMMEDIATE, holding the write lock), so appends are serialized by the database across
    processes and hosts. Then the record is inserted and the head moved to it.
    """
    actor = actor or current_actor()
    event_type = EventType.writable(str(event_type))
    # No savepoint of its own: the append is part of the caller's change (a failure here fails the whole
    # transaction, which is what must happen), and a savepoint costs two more round trips per write.
    with transaction.atomic(savepoint=False):
        heads = ChainHead.objects.select_for_update().filter(tenant_id=tenant.pk)
        head = heads.first()
        if head is None:
            ChainHead.objects.bulk_create([ChainHead(tenant_id=tenant.pk)], ignore_conflicts=True)
            head = heads.get()
        record = ChangeRecord(
            tenant_id=tenant.pk,
            seq=head.last_seq + 1,
            event_type=event_type,
            target_type=target_type or target.__class__.__name__,
            target_id=str(target.pk),
            actor=actor.ref,
            created_at=timezone.now(),
            payload=to_json(payload or {}),
            prev_hash=head.last_hash,
        )
        record.hash = record.compute_hash()
        record.save(force_insert=True)
        ChainHead.objects.filter(tenant_id=tenant.pk).update(last_seq=record.seq, last_hash=record.hash)
        hooks.emit((record,))
    return record


@dataclass(frozen=True)
class ChangeEntry:
    """One record to append with ``record_changes`` (``created_at``: now when None)."""

    event_type: str
    target_type: str
    target_id: str
    payload: dict
    created_at: datetime | None = None


def record_changes(
    *, tenant, entries, actor: Actor | None = None, record_model=ChangeRecord, head_model=ChainHead
) -> int:
    """Append ``entries`` to ``tenant``'s chain in one extension: the chain head is locked once (as in
    ``record_change``), the records are hashed in order in Python and inserted in batches, and the head
    moves once to the last. For rows written in bulk (``audit.recording``: ``recorded_update``,
    ``recorded_bulk_create``; the benchmark's data); a data migration passes its historical models
    (``record_model``, ``head_model``). Returns how many were appended."""
    actor_ref = (actor or current_actor()).ref
    entries = list(entries)
    if not entries:
        return 0
    now = timezone.now()
    with transaction.atomic(savepoint=False):  # part of the caller's change, as in record_change
        head = head_model.objects.select_for_update().filter(tenant_id=tenant.pk).first()
        if head is None:
            head_model.objects.bulk_create([head_model(tenant_id=tenant.pk)], ignore_conflicts=True)
            head = head_model.objects.select_for_update().get(tenant_id=tenant.pk)
        seq, prev = head.last_seq, head.last_hash
        rows = []
        for entry in entries:
            seq += 1
            columns = {
                "tenant_id": tenant.pk,
                "seq": seq,
                "event_type": EventType.writable(str(entry.event_type)),
                "target_type": entry.target_type,
                "target_id": str(entry.target_id),
                "actor": actor_ref,
                "created_at": entry.created_at or now,
                "payload": to_json(entry.payload or {}),
                "prev_hash": prev,
            }
            digest = chain.record_hash(prev, chain_fields(**columns))
            rows.append(record_model(**columns, hash=digest))
            prev = digest
        record_model.objects.bulk_create(rows, batch_size=1000)
        head_model.objects.filter(tenant_id=tenant.pk).update(last_seq=seq, last_hash=prev)
        if record_model is ChangeRecord:  # not a data migration's historical model
            hooks.emit(rows)
    return len(rows)


@dataclass(frozen=True)
class ChainVerification:
    """What one verification checked: records ``from_seq..to_seq`` (``to_seq`` is the chain head read
    when it started; empty when ``to_seq < from_seq``), ``checked`` of them recomputed before the first
    broken one (all of them when ``ok``). ``full``: recomputed from genesis (asked for, or no checkpoint
    yet); otherwise from the checkpoint at ``from_seq``, verified at ``anchor_verified_at``."""

    ok: bool
    checked: int
    first_broken_seq: int | None
    reason: str = ""
    from_seq: int = 1
    to_seq: int = 0
    full: bool = True
    anchor_verified_at: datetime | None = None
    checkpoints_confirmed: int = 0

    def as_dict(self) -> dict:
        return {
            "ok": self.ok,
            "checked": self.checked,
            "first_broken_seq": self.first_broken_seq,
            "from_seq": self.from_seq,
            "to_seq": self.to_seq,
            "full": self.full,
            "reason": self.reason,
        }


def _chain_rows(queryset) -> Iterator[dict]:
    rows = queryset.order_by("seq").values_list(*CHAIN_COLUMNS).iterator(chunk_size=2000)
    return (chain_fields(**dict(zip(CHAIN_COLUMNS, row, strict=True))) for row in rows)


#: ``progress(done, total)``: called every ``PROGRESS_EVERY`` records by the long walks below (commands show it)
ProgressCallback = Callable[[int, int], None]
PROGRESS_EVERY = 1000


def verify_chain(
    tenant, *, full: bool = False, save_checkpoint: bool = True, progress: ProgressCallback | None = None
) -> ChainVerification:
    """Recompute ``tenant``'s chain up to its head and name the first record that does not hold (a
    changed record, a gap left by a deleted one, a truncated tail).

    The head is read first and only records ``seq <= head.last_seq`` are checked: records are
    append-only and a head row is committed with its record, so that range is fixed while writers
    append after it (each query may see a later snapshot under READ COMMITTED; none of them can
    change the range). The head's hash must be the hash of record ``head.last_seq``.

    Incremental by default: from the newest ``ChainCheckpoint`` at or below the head, whose record must
    still carry the checkpoint's hash and recompute to it; then the records after it. ``full=True``
    recomputes from genesis and confirms every checkpoint against its record. Either way a checkpoint
    above the head whose record is gone or changed means the tail was cut (and the head rewound). A
    successful verification leaves a checkpoint at the head (``save_checkpoint``), so the next one
    costs only the records appended since."""
    head = ChainHead.objects.filter(tenant_id=tenant.pk).values_list("last_seq", "last_hash").first()
    records = ChangeRecord.objects.filter(tenant_id=tenant.pk)
    if head is None:  # never appended through record_change: check whatever is there, up to a fixed seq
        to_seq, head_hash = records.aggregate(last=Max("seq"))["last"] or 0, None
    else:
        to_seq, head_hash = head
    checkpoints = ChainCheckpoint.objects.filter(tenant_id=tenant.pk)
    anchor = None if full else checkpoints.filter(seq__lte=to_seq).order_by("-seq").first()
    from_seq = anchor.seq if anchor else 1
    if anchor:
        expected = iter([(anchor.seq, anchor.hash, anchor.verified_at)])
    else:
        expected = (
            checkpoints.filter(seq__lte=to_seq).order_by("seq").values_list("seq", "hash", "verified_at").iterator()
        )
    result = partial(
        ChainVerification,
        from_seq=from_seq,
        to_seq=to_seq,
        full=anchor is None,
        anchor_verified_at=anchor.verified_at if anchor else None,
    )
    checked, confirmed, last_hash = 0, 0, GENESIS_HASH
    rows = _chain_rows(records.filter(seq__gte=from_seq, seq__lte=to_seq))
    first = next(rows, None)
    if first is not None and from_seq > 1:
        last_hash = first["prev_hash"]  # vouched for by the checkpoint, which is checked on this record
    pending = next(expected, None)
    for item in chain.walk(_prepend(first, rows), first_seq=from_seq, prev_hash=last_hash):
        if isinstance(item, chain.Break):
            return result(False, checked, item.seq, item.reason)
        while pending is not None and pending[0] < item["seq"]:
            pending = next(expected, None)
        if pending is not None and pending[0] == item["seq"]:
            if pending[1] != item["hash"]:
                return result(
                    False,
                    checked,
                    item["seq"],
                    f"record #{item['seq']} does not carry the hash of the checkpoint verified at it on "
                    f"{pending[2].isoformat()} (it, or a record before it, was rewritten)",
                )
            confirmed += 1
        checked, last_hash = checked + 1, item["hash"]
        if progress is not None and checked % PROGRESS_EVERY == 0:
            progress(checked, to_seq - from_seq + 1)
    if checked < to_seq - from_seq + 1:
        missing = from_seq + checked
        return result(False, checked, missing, f"record #{missing} is missing (the chain head is #{to_seq})")
    if head_hash is not None and head_hash != last_hash:
        if not to_seq:  # an empty chain whose head carries a hash: record #1 is what went missing
            return result(False, 0, 1, "the chain head is at #0 but its hash is not the genesis hash")
        return result(False, checked - 1, to_seq, f"the chain head's hash is not the hash of record #{to_seq}")
    cut = _checkpoint_beyond_head(checkpoints, records, to_seq, every=anchor is None)
    if cut is not None:
        return result(
            False,
            checked,
            to_seq + 1,
            f"the chain ends at #{to_seq} but record #{cut.seq} was verified on {cut.verified_at.isoformat()} "
            "(checkpoint): records after the head were removed or rewritten",
        )
    if save_checkpoint and to_seq and (anchor is None or anchor.seq < to_seq):
        ChainCheckpoint.objects.bulk_create(
            [ChainCheckpoint(tenant_id=tenant.pk, seq=to_seq, hash=last_hash, verified_at=timezone.now())],
            ignore_conflicts=True,
        )
    return result(True, checked, None, checkpoints_confirmed=confirmed)


def _prepend(first, rest):
    if first is not None:
        yield first
    yield from rest


def _checkpoint_beyond_head(checkpoints, records, to_seq: int, *, every: bool):
    """A checkpoint above the head whose record is gone or changed (None when all hold). Above the head
    is normal while writers append (another verification read a newer head); its record must exist."""
    beyond = checkpoints.filter(seq__gt=to_seq).order_by("-seq")
    beyond = list(beyond if every else beyond[:1])
    if not beyond:
        return None
    hashes = dict(records.filter(seq__in=[cp.seq for cp in beyond]).values_list("seq", "hash"))
    return next((cp for cp in beyond if hashes.get(cp.seq) != cp.hash), None)


# ---------------------------------------------------------------- signed checkpoints


class SigningNotConfigured(Conflict):
    code = "signing_not_configured"


class ChainNotExtended(Conflict):
    """The chain in the database does not extend what ARM signed before (or does not hold): nothing is
    signed over it. ``verify_audit --checkpoints`` names where it diverges."""

    code = "chain_broken"


@dataclass(frozen=True)
class CheckpointTaken:
    """``checkpoint``: the signed checkpoint at the chain head; ``created``: False when the head had not
    moved since that checkpoint (or another process signed the same head first)."""

    checkpoint: SignedCheckpoint
    created: bool


def checkpoint_take(
    tenant, *, keyring: signing.KeyRing | None = None, progress: ProgressCallback | None = None
) -> CheckpointTaken:
    """Sign ``tenant``'s chain head (seq, hash, RFC 6962 root over records 1..seq, time) with the active
    key and store it; the head as read when it starts, so writers are never waited for (nothing here is
    on the write path: records 1..head are append-only and fixed).

    Before signing, the chain must extend the newest checkpoint signed before (its signature verifies,
    its record still has its hash, the root over records 1..its seq is still its root; read as hashes
    only), and every record after it must link and recompute to its hash: a signature never covers a
    rewritten history or a record that does not match its hash. Raises ChainNotExtended otherwise, and
    SigningNotConfigured without a signing key. A head that has not moved since the newest checkpoint
    is not signed again."""
    keyring = keyring or configured_keyring()
    if keyring.signer is None:
        raise SigningNotConfigured(
            "No audit signing key is configured (ARM_AUDIT_SIGNING_KEY_FILE or ARM_AUDIT_SIGNING_KEY)."
        )
    # The newest checkpoint before the head: a checkpoint committed before this read has a seq no greater
    # than any head read after it, so one above the head means the head was rewound.
    newest = SignedCheckpoint.objects.filter(tenant_id=tenant.pk).order_by("-seq").first()
    head = ChainHead.objects.filter(tenant_id=tenant.pk).values_list("last_seq", "last_hash").first()
    to_seq, head_hash = head or (0, GENESIS_HASH)
    if newest is not None:
        _check_newest(tenant, newest, keyring, to_seq, head_hash)
        if newest.seq == to_seq:
            return CheckpointTaken(newest, False)
    frontier = _extend(tenant, newest, to_seq, head_hash, progress)
    time = signing.format_time(timezone.now())
    document = keyring.sign(
        tenant=str(tenant.pk),
        tenant_slug=tenant.slug,
        seq=to_seq,
        hash=head_hash,
        root=frontier.root().hex(),
        time=time,
    )
    try:
        with transaction.atomic():
            checkpoint = SignedCheckpoint.objects.create(
                tenant_id=tenant.pk,
                seq=to_seq,
                hash=head_hash,
                root=document["root"],
                signed_at=datetime.fromisoformat(time),
                key_id=document["key_id"],
                signature=document["signature"],
            )
    except IntegrityError:  # another process signed this head first: one checkpoint per seq
        return CheckpointTaken(SignedCheckpoint.objects.get(tenant_id=tenant.pk, seq=to_seq), False)
    return CheckpointTaken(checkpoint, True)


def _check_newest(tenant, newest: SignedCheckpoint, keyring: signing.KeyRing, to_seq: int, head_hash: str) -> None:
    if newest.seq > to_seq:
        raise ChainNotExtended(
            f"The chain head is #{to_seq} but a checkpoint at #{newest.seq} was signed: records after the head were "
            "removed and the head rewound. Run verify_audit --checkpoints."
        )
    verified = signing.verify_checkpoint(newest.document(tenant.slug), keyring.public_keys())
    if not verified:
        raise ChainNotExtended(
            f"The newest stored checkpoint (#{newest.seq}) does not verify: {verified.reason}. It was not "
            "written by ARM, or its key is no longer configured."
        )
    if newest.seq == to_seq and newest.hash != head_hash:
        raise ChainNotExtended(
            f"The chain head's hash is not the hash of the checkpoint signed at #{to_seq}. Run verify_audit "
            "--checkpoints."
        )


def _extend(
    tenant, newest: SignedCheckpoint | None, to_seq: int, head_hash: str, progress: ProgressCallback | None = None
) -> chain.MerkleFrontier:
    """The Merkle frontier of records 1..to_seq, checking that they extend ``newest`` (hashes only up to
    it) and recompute after it. Raises ChainNotExtended naming the first record that does not hold."""
    records = ChangeRecord.objects.filter(tenant_id=tenant.pk)
    frontier = chain.MerkleFrontier()
    signed_seq = newest.seq if newest else 0
    prev_hash = GENESIS_HASH
    if signed_seq:
        rows = records.filter(seq__lte=signed_seq).order_by("seq").values_list("seq", "prev_hash", "hash")
        for expected, (seq, prev, digest) in enumerate(rows.iterator(chunk_size=5000), start=1):
            if seq != expected or prev != prev_hash:
                why = f"record #{expected} is missing" if seq != expected else "its prev_hash is not the record before"
                _not_extended(expected, why)
            frontier.append(bytes.fromhex(digest))
            prev_hash = digest
            if progress is not None and expected % PROGRESS_EVERY == 0:
                progress(expected, to_seq)
        if frontier.size != signed_seq:
            _not_extended(frontier.size + 1, f"record #{frontier.size + 1} is missing")
        if prev_hash != newest.hash or frontier.root().hex() != newest.root:
            raise ChainNotExtended(
                f"Records #1..#{signed_seq} are not the ones signed at #{signed_seq} ("
                + ("its hash" if prev_hash != newest.hash else "its Merkle root")
                + " differs). Run verify_audit --checkpoints."
            )
    rows = _chain_rows(records.filter(seq__gt=signed_seq, seq__lte=to_seq))
    for item in chain.walk(rows, first_seq=signed_seq + 1, prev_hash=prev_hash):
        if isinstance(item, chain.Break):
            _not_extended(item.seq, item.reason)
        frontier.append(bytes.fromhex(item["hash"]))
        prev_hash = item["hash"]
        if progress is not None and frontier.size % PROGRESS_EVERY == 0:
            progress(frontier.size, to_seq)
    if frontier.size != to_seq:
        _not_extended(frontier.size + 1, f"record #{frontier.size + 1} is missing (the chain head is #{to_seq})")
    if prev_hash != head_hash:
        _not_extended(to_seq, f"the chain head's hash is not the hash of record #{to_seq}")
    return frontier


def _not_extended(seq: int, reason: str):
    raise ChainNotExtended(f"Record #{seq} does not hold ({reason}): nothing was signed. Run verify_audit --full.")


@dataclass(frozen=True)
class PublishedVerification:
    """How the database compares with the signed checkpoints published for one tenant (a witness).
    ``last_good``/``first_bad``: the last checkpoint the database extends and the first it does not (the
    divergence lies in records ``last_good + 1 .. first_bad``); ``first_broken_seq``: the exact record,
    when the chain itself does not hold there."""

    ok: bool
    published: int
    extended: int
    to_seq: int
    checked: int
    last_good: int | None = None
    first_bad: int | None = None
    first_broken_seq: int | None = None
    reason: str = ""
    fork: bool = False  # two genuine checkpoints at one seq disagree: the key signed two histories

    @property
    def divergence(self) -> str:
        start = (self.last_good or 0) + 1
        return f"#{start}..#{self.first_bad}" if self.first_bad is not None else f"after #{start - 1}"


def verify_published(
    tenant, documents: list[dict], *, progress: ProgressCallback | None = None
) -> PublishedVerification:
    """Prove that the database still extends every checkpoint in ``documents`` (the JSON forms published
    for ``tenant``, signatures already verified): recompute the chain from genesis and, at each
    checkpoint's seq, compare the record's hash and the Merkle root over records 1..seq with the
    checkpoint's. Catches a rewritten record (the chain breaks, or re-hashed forward: the hashes differ
    from the checkpoints'), a truncated tail (a checkpoint beyond the head), spliced records, and two
    signed checkpoints at one seq that disagree."""
    by_seq: dict[int, dict] = {}
    for document in sorted(documents, key=lambda d: d["seq"]):
        known = by_seq.setdefault(document["seq"], document)
        if (known["hash"], known["root"]) != (document["hash"], document["root"]):
            return PublishedVerification(
                False,
                len(documents),
                0,
                0,
                0,
                first_bad=document["seq"],
                fork=True,
                reason=f"two signed checkpoints at #{document['seq']} disagree ({known['hash']} and "
                f"{document['hash']}): the signing key signed two different histories",
            )
    published = sorted(by_seq.values(), key=lambda d: d["seq"])
    head = ChainHead.objects.filter(tenant_id=tenant.pk).values_list("last_seq", "last_hash").first()
    records = ChangeRecord.objects.filter(tenant_id=tenant.pk)
    if head is None:
        to_seq, head_hash = records.aggregate(last=Max("seq"))["last"] or 0, None
    else:
        to_seq, head_hash = head
    pending = iter(published)
    current = next(pending, None)
    frontier, checked, extended, last_good, last_hash = chain.MerkleFrontier(), 0, 0, None, GENESIS_HASH

    def at(seq: int, digest: str) -> str | None:
        """Why the checkpoints published at ``seq`` are not extended by records 1..seq (None: they are)."""
        nonlocal current, extended, last_good
        while current is not None and current["seq"] == seq:
            if current["hash"] != digest:
                return (
                    f"record #{seq} has hash {digest}, the checkpoint signed at #{seq} on {current['time']} has "
                    f"{current['hash']}: records #{(last_good or 0) + 1}..#{seq} were rewritten (the chain holds "
                    "in itself, so it was re-hashed forward from one of them)"
                )
            if frontier.root().hex() != current["root"]:
                return (
                    f"the Merkle root over records #1..#{seq} is {frontier.root().hex()}, the checkpoint signed at "
                    f"#{seq} on {current['time']} states {current['root']}: a record in #1..#{seq} was replaced"
                )
            extended, last_good, current = extended + 1, seq, next(pending, None)
        return None

    def failed(reason: str, broken: int | None = None) -> PublishedVerification:
        first_bad = current["seq"] if current is not None else None
        return PublishedVerification(
            False, len(published), extended, to_seq, checked, last_good, first_bad, broken, reason
        )

    why = at(0, GENESIS_HASH)
    if why is not None:
        return failed(why)
    for item in chain.walk(_chain_rows(records.filter(seq__lte=to_seq)), first_seq=1, prev_hash=GENESIS_HASH):
        if isinstance(item, chain.Break):
            return failed(item.reason, item.seq)
        frontier.append(bytes.fromhex(item["hash"]))
        checked, last_hash = checked + 1, item["hash"]
        if progress is not None and checked % PROGRESS_EVERY == 0:
            progress(checked, to_seq)
        why = at(item["seq"], last_hash)
        if why is not None:
            return failed(why)
    if checked < to_seq:
        return failed(f"record #{checked + 1} is missing (the chain head is #{to_seq})", checked + 1)
    if head_hash is not None and head_hash != last_hash:
        return failed(f"the chain head's hash is not the hash of record #{to_seq}", max(to_seq, 1))
    if current is not None:
        return failed(
            f"the chain ends at #{to_seq} (its head) but a checkpoint at #{current['seq']} was signed on "
            f"{current['time']}: records #{to_seq + 1}..#{current['seq']} were removed (the tail cut, the head "
            "rewound)"
        )
    return PublishedVerification(True, len(published), extended, to_seq, checked, last_good)
