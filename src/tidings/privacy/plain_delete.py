"""Plain set-based deletion, for the erasure of an account (P13, P17).

Django's `QuerySet.delete()` loads every row it deletes as a model instance when the
model has reverse relations (a contact has six), to follow them: an account of a million
contacts took 21 minutes that way. Here a query's rows go in `DELETE ... WHERE` statements
and the database does the work: the rows that point at them are deleted or detached first,
by statements of their own, following each foreign key's `on_delete` as the collector
would. Nothing is read into the worker but counts.

Two things keep the collector, so that no hook is lost: a model with `pre_delete` or
`post_delete` receivers (jobs and archives delete their files from one), and an
`on_delete` other than CASCADE, SET_NULL, PROTECT, RESTRICT or DO_NOTHING. Those tables
are small (jobs, exports); the big ones (contacts, subscriptions, proofs, deliveries,
events) have neither.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Collection
from typing import Any

from django.db import models
from django.db.models import signals
from django.db.models.deletion import (
    CASCADE,
    DO_NOTHING,
    PROTECT,
    RESTRICT,
    SET_NULL,
    ProtectedError,
    get_candidate_relations_to_delete,
)


def _needs_collector(model: type[models.Model]) -> bool:
    if signals.pre_delete.has_listeners(model) or signals.post_delete.has_listeners(model):
        return True
    # Generic relations are followed by the collector only.
    return any(hasattr(f, "bulk_related_objects") for f in model._meta.private_fields)


def delete_rows(
    qs: models.QuerySet[Any],
    *,
    skip: Collection[type[models.Model]] = (),
    _chain: tuple[type[models.Model], ...] = (),
) -> Counter[str]:
    """Delete the rows of `qs` and what the foreign keys say goes with them, in the
    caller's transaction. Returns the rows deleted per model label.

    Foreign keys from the models in `skip` are not followed (the caller emptied those
    tables of these rows' dependents already: following them would probe an index per
    row for nothing); the database's own check at commit still refuses a row left."""
    model = qs.model
    if qs.query.annotations or qs.query.combinator:
        # A DELETE cannot carry an annotation or a union: the same rows by their ids.
        qs = model._base_manager.filter(pk__in=qs.values("pk"))
    if _needs_collector(model) or model in _chain:
        _, per_model = qs.delete()
        return Counter({label: n for label, n in per_model.items() if n})
    done: Counter[str] = Counter()
    # Reverse relations (ForeignObjectRel): the foreign keys of other tables to this one.
    relations: list[Any] = list(get_candidate_relations_to_delete(model._meta))
    on_delete = [r.on_delete for r in relations]
    if any(h not in (CASCADE, SET_NULL, PROTECT, RESTRICT, DO_NOTHING) for h in on_delete):
        _, per_model = qs.delete()
        return Counter({label: n for label, n in per_model.items() if n})
    for relation in relations:
        field = relation.field
        if relation.related_model in skip:
            continue
        related = relation.related_model._base_manager.filter(
            **{f"{field.name}__in": qs.values(field.target_field.attname)}
        )
        if relation.on_delete is CASCADE:
            done += delete_rows(related, skip=skip, _chain=(*_chain, model))
        elif relation.on_delete is SET_NULL:
            related.update(**{field.name: None})
        elif relation.on_delete in (PROTECT, RESTRICT):
            blocking = list(related[:1])
            if blocking:
                raise ProtectedError(
                    f"{model._meta.label} rows are still referenced by "
                    f"{relation.related_model._meta.label}.{field.name}",
                    set(blocking),
                )
    n = qs._raw_delete(qs.db)
    if n:
        done[model._meta.label] += n
    return done
