"""Writing one checked chunk of an import into the audience, in the caller's transaction.

Two writers with one behaviour (the tests run both on PostgreSQL):
- `PostgresWriter`, the fast path: COPY the chunk into a temporary staging table, find the
  rows the account refuses with two index joins, then one set-based INSERT ... ON
  CONFLICT (account_id, email) for the contacts and their subscriptions, in a single
  statement.
- `OrmWriter`, for SQLite (the embedded default) and any other database: the same
  decisions made in Python over the chunk, written with bulk_create / bulk_update.

Both take the column list from the models, so a field added to Contact later is written
with its default.

The proof of consent is what the customer stated for the whole file, so it is written
once (`import_proof`: who stated it, when, the legal basis, the file's name and SHA-256)
and every subscription the import writes references it, instead of a copy per contact.
An import to no list writes no subscription: its contacts then get a proof row each, as
nothing else would tie them to the statement. The file has no per-row consent columns
today (Mailchimp's optin_time / optin_ip are ignored); such details would go in per-row
proofs.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from django.db import connection
from django.db.models import Field, Model

from tidings.audience.models import (
    ConsentProof,
    Contact,
    ContactChange,
    Subscription,
    SuppressedContact,
)
from tidings.audience.services import MAX_ATTRIBUTES, changed_fields
from tidings.transfer.models import ImportJob, transfer_path
from tidings.transfer.rows import Contact as Row

SUPPRESSED = "on this account's suppression list (erased or opted out): never imported"
DUPLICATES = "duplicates"
EARLIER = "duplicate of an address earlier in the file: only the first is used"
ACTIVE = Contact.Status.ACTIVE


def left_reason(status: str) -> str:
    return f"already in your audience as “{status}”: an import never makes them active"


@dataclass
class ChunkResult:
    added: int = 0
    updated: int = 0
    unchanged: int = 0
    # seq -> (reason, kind) for rows the account refuses.
    refused: dict[int, tuple[str, str]] = field(default_factory=dict)
    # list id -> subscriptions written (confirmed), for per-list counters.
    subscribed: dict[int, int] = field(default_factory=dict)

    def add(self, other: ChunkResult) -> None:
        """Count in the result of another part of the same chunk."""
        self.added += other.added
        self.updated += other.updated
        self.unchanged += other.unchanged
        self.refused.update(other.refused)
        for list_id, n in other.subscribed.items():
            self.subscribed[list_id] = self.subscribed.get(list_id, 0) + n


@dataclass
class Consent:
    """What the customer stated for the whole file, written on each contact and proof."""

    basis: str
    basis_at: datetime | None
    stamp: datetime
    text: str
    version: str
    note: str

    @classmethod
    def of(cls, job: ImportJob) -> Consent:
        """The customer's own words as the consent text, and a short note naming the
        import."""
        assert job.stamp is not None
        when = f" on {job.basis_at:%Y-%m-%d}" if job.basis_at else ""
        basis = (
            f"consent collected elsewhere{when}"
            if job.legal_basis == ImportJob.Basis.CONSENT
            else f"contract{when}"
        )
        return cls(
            basis=job.legal_basis,
            basis_at=job.basis_at,
            stamp=job.stamp,
            text=job.statement,
            version=f"import-{job.pk}",
            note=(
                f"stated by the customer at import #{job.pk} of “{job.original_name}” "
                f"({basis}): {job.statement}"
            )[:500],
        )


def import_proof(job: ImportJob) -> ConsentProof:
    """The import's one proof of consent, made at its first start (with the file's
    digest) and found again when the job resumes."""
    consent = Consent.of(job)
    found = ConsentProof.objects.filter(
        account_id=job.account_id,
        contact__isnull=True,
        method=ConsentProof.Method.IMPORT,
        consent_version=consent.version,
    ).first()
    if found is not None:
        return found
    return ConsentProof.objects.create(
        account_id=job.account_id,
        method=ConsentProof.Method.IMPORT,
        legal_basis=consent.basis,
        consent_text=consent.text,
        consent_version=consent.version,
        given_at=consent.basis_at or consent.stamp,
        note=consent.note,
        stated_by_id=job.created_by_id,
        stated_at=job.stamp,
        source=job.original_name[:255],
        file_digest=_file_digest(job),
    )


def drop_unused_proof(job: ImportJob) -> None:
    """An import that subscribed no one leaves no proof behind."""
    ConsentProof.objects.filter(
        account_id=job.account_id,
        contact__isnull=True,
        method=ConsentProof.Method.IMPORT,
        consent_version=Consent.of(job).version,
        subscriptions__isnull=True,
    ).delete()


def _file_digest(job: ImportJob) -> str:
    digest = hashlib.sha256()
    with open(transfer_path(job.upload_file), "rb") as handle:
        while block := handle.read(1 << 20):
            digest.update(block)
    return digest.hexdigest()


def writer_for(
    vendor: str, job: ImportJob, lists: Sequence[int], proof: ConsentProof | None
) -> Writer:
    if vendor == "postgresql":
        return PostgresWriter(job, lists, proof)
    return OrmWriter(job, lists, proof)


def _defaults(model: type[Model], given: dict[str, str]) -> tuple[list[str], list[str], dict]:
    """Columns of `model`, the SQL of each (given, or a parameter with the field's
    default), and those parameters."""
    columns, sql, params = [], [], {}
    for f in model._meta.concrete_fields:
        if f.primary_key:
            continue
        column = str(f.column)
        columns.append(connection.ops.quote_name(column))
        if column in given:
            sql.append(given[column])
        else:
            name = f"default_{column}"
            params[name] = _default(f)
            sql.append(f"%({name})s")
    return columns, sql, params


def _default(f: Field) -> Any:
    value = f.get_default()
    return f.get_db_prep_save(value, connection)


# The account as a parameter the planner cannot look up in its statistics: statistics
# taken before this account grew say it has no contacts, and the planner would then walk
# all of them through the (account, status) index for every row instead of one probe
# of the unique (account, email) index.
ACCOUNT = "(SELECT %(account)s::bigint)"
PROBES_ONLY = (
    "enable_seqscan", "enable_bitmapscan", "enable_material", "enable_hashjoin",
    "enable_mergejoin",
    # What is switched off above still counts in the estimate, at 10^10, far above
    # jit_above_cost: PostgreSQL would compile each chunk's upsert with JIT, which
    # measured 0.2 s of its 1 s for a statement that runs once.
    "jit",
)  # fmt: skip


class PostgresWriter:
    # Chunks it can write at once, on as many connections (see importer._write_in_lanes).
    lanes = 2
    STAGE = (
        "CREATE TEMP TABLE IF NOT EXISTS transfer_stage (seq bigint, email text, name text, "
        "attributes jsonb, tags jsonb, digest text, uuid uuid) ON COMMIT DELETE ROWS"
    )

    def __init__(self, job: ImportJob, lists: Sequence[int], proof: ConsentProof | None) -> None:
        self.job = job
        self.consent = Consent.of(job)
        self.update = job.mode == ImportJob.Mode.UPDATE
        self.params: dict[str, Any] = {
            "account": job.account_id,
            "proof": proof.pk if proof is not None else None,
            "stamp": self.consent.stamp,
            "basis": self.consent.basis,
            "basis_at": self.consent.basis_at,
            "given_at": self.consent.basis_at or self.consent.stamp,
            "text": self.consent.text,
            "version": self.consent.version,
            "note": self.consent.note,
            "lists": list(lists),
            "add_only": not self.update,
            "active": ACTIVE,
            "max_attributes": MAX_ATTRIBUTES,
        }
        self.upsert = self._upsert_sql(has_tags=job.mapping.count("tags") > 0, lists=bool(lists))

    def _upsert_sql(self, *, has_tags: bool, lists: bool) -> str:
        c_cols, c_sql, c_params = _defaults(
            Contact,
            {
                "account_id": "%(account)s",
                "uuid": "s.uuid",
                "email": "s.email",
                "digest": "s.digest",
                "name": "COALESCE(s.name, '')",
                "status": "%(active)s",
                "attributes": "COALESCE(s.attributes, '{}'::jsonb)",
                "tags": "COALESCE(s.tags, '[]'::jsonb)",
                "legal_basis": "%(basis)s",
                "basis_at": "%(basis_at)s",
                "source": "'import'",
                "created_at": "%(stamp)s",
                "updated_at": "%(stamp)s",
            },
        )
        s_cols, s_sql, s_params = _defaults(
            Subscription,
            {
                "contact_id": "up.id",
                "mailing_list_id": "l.id",
                "status": "'confirmed'",
                "created_at": "%(stamp)s",
                "confirmed_at": "%(stamp)s",
                "consent_id": "%(proof)s",
            },
        )
        p_cols, p_sql, p_params = _defaults(
            ConsentProof,
            {
                "account_id": "%(account)s",
                "contact_id": "up.id",
                "method": "'import'",
                "legal_basis": "%(basis)s",
                "consent_text": "%(text)s",
                "consent_version": "%(version)s",
                "given_at": "%(given_at)s",
                "note": "%(note)s",
            },
        )
        for extra in (c_params, s_params, p_params):
            self.params.update(extra)
        if self.update:
            tags = (
                ", tags = (SELECT COALESCE(jsonb_agg(DISTINCT t ORDER BY t), '[]'::jsonb) "
                "FROM jsonb_array_elements_text(c.tags || EXCLUDED.tags) AS t)"
                if has_tags
                else ""
            )
            conflict = (
                "DO UPDATE SET name = COALESCE(NULLIF(EXCLUDED.name, ''), c.name), "  # noqa: S608
                # Merged only while the contact stays within the audience's limit on
                # attributes: repeated imports must not grow a contact past it.
                "attributes = CASE WHEN EXCLUDED.attributes = '{}'::jsonb THEN c.attributes "
                "WHEN (SELECT count(*) FROM jsonb_object_keys(c.attributes || "
                "EXCLUDED.attributes)) <= %(max_attributes)s "
                f"THEN c.attributes || EXCLUDED.attributes ELSE c.attributes END{tags}, "
                "updated_at = EXCLUDED.updated_at "
                # Not a contact who left, nor one this job wrote from an earlier line.
                "WHERE c.status = %(active)s AND c.updated_at <> EXCLUDED.updated_at"
            )
        else:
            conflict = "DO NOTHING"
        # Built from the models' column names and fixed SQL; every value is a parameter.
        # With lists, the subscriptions reference the import's one proof; without, each
        # contact gets a proof row (nothing else would tie them to the statement).
        # Built from the models' column names and fixed SQL; every value is a parameter.
        written = (
            f", subs AS (INSERT INTO audience_subscription ({', '.join(s_cols)}) "  # noqa: S608
            f"SELECT {', '.join(s_sql)} FROM up CROSS JOIN unnest(%(lists)s::bigint[]) AS l(id) "
            "ON CONFLICT (contact_id, mailing_list_id) DO NOTHING RETURNING mailing_list_id)"
            if lists
            else f", proofs AS (INSERT INTO audience_consentproof ({', '.join(p_cols)}) "  # noqa: S608
            f"SELECT {', '.join(p_sql)} FROM up)"
        )
        # Subscriptions written per list, once per statement (an InitPlan).
        per_list = (
            "(SELECT jsonb_object_agg(mailing_list_id, n) FROM (SELECT mailing_list_id, "
            "count(*) AS n FROM subs GROUP BY mailing_list_id) AS per_list)"
            if lists
            else "NULL::jsonb"
        )
        # An update notes which profile fields it changed (audience.ContactChange, read
        # by outgoing webhooks), as services.changed_fields does. Every sub-statement
        # sees the table as it was before the statement: `b`, probed by its primary key
        # for each row written (LIMIT keeps the probe per row), holds the old values.
        # (Never a join of two CTEs: with hash and merge joins off, that is a nested loop
        # of rows x rows, measured 25 times slower.)
        changes = ""
        if self.update:
            changes = (
                ", changes AS (INSERT INTO audience_contactchange (account_id, contact_id, "
                "fields, at) SELECT %(account)s, up.id, f.fields, %(stamp)s "
                "FROM up CROSS JOIN LATERAL (SELECT o.name, o.attributes "
                "FROM audience_contact o WHERE o.id = up.id LIMIT 1) AS b CROSS JOIN LATERAL ("
                'SELECT jsonb_agg(n ORDER BY o, n COLLATE "C") AS fields FROM ('
                "SELECT 'name' AS n, 0 AS o WHERE up.name IS DISTINCT FROM b.name "
                "UNION ALL SELECT 'attributes.' || e.k, 1 FROM jsonb_each(up.attributes) "
                "AS e(k, v) WHERE b.attributes -> e.k IS DISTINCT FROM e.v) AS x) AS f "
                "WHERE NOT up.inserted AND f.fields IS NOT NULL)"
            )
        return (
            f"WITH up AS (INSERT INTO audience_contact AS c ({', '.join(c_cols)}) "  # noqa: S608
            f"SELECT {', '.join(c_sql)} FROM transfer_stage s "
            "WHERE NOT EXISTS (SELECT 1 FROM audience_suppressedcontact x "
            f"WHERE x.account_id = {ACCOUNT} AND x.digest = s.digest) "
            f"ON CONFLICT (account_id, email) {conflict} "
            "RETURNING c.id, c.email, (c.xmax = 0) AS inserted, c.name, c.attributes)"
            f"{written}{changes} "
            f"SELECT email, inserted, {per_list} FROM up"
        )

    CLASSIFY = (
        "SELECT s.seq, CASE WHEN x.id IS NOT NULL THEN 'suppressed' "  # noqa: S608
        "WHEN c.updated_at = %(stamp)s THEN 'duplicate' "
        "WHEN c.status <> %(active)s THEN c.status ELSE 'exists' END "
        "FROM unnest(%(seqs)s::bigint[], %(emails)s::text[], %(digests)s::text[]) "
        "AS s(seq, email, digest) "
        f"LEFT JOIN audience_suppressedcontact x ON x.account_id = {ACCOUNT} "
        "AND x.digest = s.digest "
        f"LEFT JOIN audience_contact c ON c.account_id = {ACCOUNT} AND c.email = s.email"
    )

    def write(self, rows: list[Row]) -> ChunkResult:
        result = ChunkResult()
        with connection.cursor() as cursor:
            # The chunk's commit carries its checkpoint: if the server loses it in a
            # crash, both are lost and the re-run writes the chunk again.
            cursor.execute("SET LOCAL synchronous_commit = off")
            cursor.execute(self.STAGE)
            # Emptied at commit; emptied here too for a chunk inside a larger transaction.
            cursor.execute("TRUNCATE transfer_stage")
            with cursor.copy(
                "COPY transfer_stage (seq, email, name, attributes, tags, digest, uuid) FROM STDIN"
            ) as copy:
                for row in rows:
                    copy.write_row(row)
            # One index probe per staged row in each table, whatever the statistics say:
            # a fresh table looks empty to the planner, and its nested loop over a
            # sequential scan would cost rows x contacts.
            for setting in PROBES_ONLY:
                cursor.execute(f"SET LOCAL {setting} = off")
            cursor.execute(self.upsert, self.params)
            written = cursor.fetchall()
            result.added = sum(1 for _, inserted, _ in written if inserted)
            result.updated = len(written) - result.added
            if written and written[0][2]:
                # Django has psycopg hand JSON over as text.
                per_list = json.loads(written[0][2])
                result.subscribed = {int(k): int(n) for k, n in per_list.items()}
            # Only the rows not written need a reason: usually none or a few.
            done = {email for email, _, _ in written}
            left = [row for row in rows if row.email not in done]
            if left:
                cursor.execute(
                    self.CLASSIFY,
                    {
                        **self.params,
                        "seqs": [row.seq for row in left],
                        "emails": [row.email for row in left],
                        "digests": [row.digest for row in left],
                    },
                )
                for seq, verdict in cursor.fetchall():
                    if verdict == "exists":
                        result.unchanged += 1
                    elif verdict == "suppressed":
                        result.refused[seq] = (SUPPRESSED, "skipped")
                    elif verdict == "duplicate":
                        result.refused[seq] = (EARLIER, DUPLICATES)
                    else:
                        result.refused[seq] = (left_reason(verdict), "skipped")
            for setting in PROBES_ONLY:
                cursor.execute(f"SET LOCAL {setting} TO DEFAULT")
            # The foreign keys of what was written (four checks per contact, a third of
            # the chunk's time) are checked now rather than at commit: with chunks
            # written on two connections, a commit waits for the chunk before it, and
            # the checks would wait with it instead of running beside it.
            cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
            cursor.execute("SET CONSTRAINTS ALL DEFERRED")
        return result


class OrmWriter:
    """The same decisions as PostgresWriter, through the ORM (SQLite and others)."""

    BATCH = 500  # SQLite allows at most 32,766 parameters per statement
    lanes = 1  # SQLite takes one writer at a time

    def __init__(self, job: ImportJob, lists: Sequence[int], proof: ConsentProof | None) -> None:
        self.job = job
        self.consent = Consent.of(job)
        self.update = job.mode == ImportJob.Mode.UPDATE
        self.lists = list(lists)
        self.proof = proof
        self.has_tags = "tags" in job.mapping

    def write(self, rows: list[Row]) -> ChunkResult:
        result = ChunkResult()
        account_id = self.job.account_id
        stamp = self.consent.stamp
        suppressed: set[str] = set()
        existing: dict[str, Contact] = {}
        for i in range(0, len(rows), self.BATCH):
            batch = rows[i : i + self.BATCH]
            suppressed.update(
                SuppressedContact.objects.filter(
                    account_id=account_id, digest__in=[r.digest for r in batch]
                ).values_list("digest", flat=True)
            )
            for contact in Contact.objects.select_for_update().filter(
                account_id=account_id, email__in=[r.email for r in batch]
            ):
                existing[contact.email] = contact
        new: list[Contact] = []
        changed: list[Contact] = []
        notes: list[ContactChange] = []
        for row in rows:
            found = existing.get(row.email)
            if row.digest in suppressed:
                result.refused[row.seq] = (SUPPRESSED, "skipped")
            elif found is None:
                new.append(self._new(row))
            elif found.updated_at == stamp:
                result.refused[row.seq] = (EARLIER, DUPLICATES)
            elif found.status != ACTIVE:
                result.refused[row.seq] = (left_reason(found.status), "skipped")
            elif not self.update:
                result.unchanged += 1
            else:
                before = (found.name, dict(found.attributes))
                self._merge(found, row)
                changed.append(found)
                fields = changed_fields(*before, found)
                if fields:
                    notes.append(
                        ContactChange(account_id=account_id, contact=found, fields=fields, at=stamp)
                    )
        Contact.objects.bulk_create(new, batch_size=self.BATCH)
        Contact.objects.bulk_update(
            changed, ["name", "attributes", "tags", "updated_at"], batch_size=self.BATCH
        )
        ContactChange.objects.bulk_create(notes, batch_size=self.BATCH)
        written = new + changed
        if self.lists:
            assert self.proof is not None
            had: set[tuple[int, int]] = set()
            for i in range(0, len(changed), self.BATCH):
                had.update(
                    Subscription.objects.filter(
                        contact_id__in=[c.pk for c in changed[i : i + self.BATCH]],
                        mailing_list_id__in=self.lists,
                    ).values_list("contact_id", "mailing_list_id")
                )
            subs = [
                Subscription(
                    contact_id=c.pk,
                    mailing_list_id=list_id,
                    status=Subscription.Status.CONFIRMED,
                    created_at=stamp,
                    confirmed_at=stamp,
                    consent_id=self.proof.pk,
                )
                for c in written
                for list_id in self.lists
                if (c.pk, list_id) not in had
            ]
            Subscription.objects.bulk_create(subs, batch_size=self.BATCH)
            for sub in subs:
                n = result.subscribed.get(sub.mailing_list_id, 0)
                result.subscribed[sub.mailing_list_id] = n + 1
        else:
            ConsentProof.objects.bulk_create(
                [
                    ConsentProof(
                        account_id=account_id,
                        contact_id=c.pk,
                        method=ConsentProof.Method.IMPORT,
                        legal_basis=self.consent.basis,
                        consent_text=self.consent.text,
                        consent_version=self.consent.version,
                        given_at=self.consent.basis_at or stamp,
                        note=self.consent.note,
                    )
                    for c in written
                ],
                batch_size=self.BATCH,
            )
        result.added, result.updated = len(new), len(changed)
        return result

    def _new(self, row: Row) -> Contact:
        return Contact(
            uuid=uuid.UUID(row.uuid),
            account_id=self.job.account_id,
            email=row.email,
            digest=row.digest,
            name=row.name or "",
            attributes=json.loads(row.attributes) if row.attributes else {},
            tags=json.loads(row.tags) if row.tags else [],
            legal_basis=self.consent.basis,
            basis_at=self.consent.basis_at,
            source=Contact.Source.IMPORT,
            created_at=self.consent.stamp,
            updated_at=self.consent.stamp,
        )

    def _merge(self, contact: Contact, row: Row) -> None:
        if row.name:
            contact.name = row.name
        if row.attributes:
            merged = {**contact.attributes, **json.loads(row.attributes)}
            if len(merged) <= MAX_ATTRIBUTES:  # as the PostgreSQL writer's CASE
                contact.attributes = merged
        if row.tags and self.has_tags:
            contact.tags = sorted(set(contact.tags) | set(json.loads(row.tags)))
        contact.updated_at = self.consent.stamp


Writer = PostgresWriter | OrmWriter
