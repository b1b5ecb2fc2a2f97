"""Staff roles (P7): each role is a Django group holding exactly the permissions it needs.

`User.staff_role` is the truth; the group follows it. The groups are (re)built from
ROLE_PERMISSIONS after every `migrate`, so a permission added here by hand in the
database is removed again: roles are code, reviewed like code.
"""

from __future__ import annotations

from typing import Any

from django.apps import apps as global_apps
from django.contrib.auth.management import create_permissions
from django.contrib.auth.models import Group, Permission
from django.contrib.contenttypes.models import ContentType
from django.db import DEFAULT_DB_ALIAS

from tidings.staff.models import StaffRole
from tidings.staff.people import Person

Role = StaffRole

# A permission Django does not create by itself: billing may see the fields of a user
# that invoices need, and nothing else (no phone, no processing choices).
VIEW_USER_BILLING = "accounts.view_user_billing"
CUSTOM_PERMISSIONS = {
    VIEW_USER_BILLING: (
        "accounts",
        "user",
        "Can view users' billing details (name, email, postal address)",
    ),
}

_SUPPORT = (
    "accounts.view_user",
    "accounts.change_user",
    "accounts.view_account",
    "accounts.change_account",
    # The support desk (desk.staff_views): conversations and the saved answers.
    "desk.view_conversation",
    "desk.change_conversation",
    "desk.view_cannedanswer",
    "desk.add_cannedanswer",
    "desk.change_cannedanswer",
)
_BILLING = (
    "accounts.view_account",
    VIEW_USER_BILLING,
    "billing.view_invoice",
    # A credit note of an issued invoice (a refund made outside the gateway).
    "billing.add_invoice",
    # What is sold, its prices, the orders (a bank transfer is marked paid) and the
    # gateways' webhooks as they arrived.
    "billing.view_offer",
    "billing.add_offer",
    "billing.change_offer",
    "billing.view_price",
    "billing.add_price",
    "billing.change_price",
    "billing.delete_price",
    "billing.view_order",
    "billing.change_order",
    "billing.view_webhookevent",
    # Plans, their renewal dates and dunning state.
    "billing.view_subscription",
)
_PRIVACY_OFFICER = (
    "accounts.view_account",
    "staff.view_auditevent",
    "privacy.view_erasurerecord",
    "privacy.view_collectionrecord",
    # The privacy office: requests, disclosures to authorities, records of processing.
    "privacy.view_disclosure",
    "privacy.add_disclosure",
    "privacy.view_datarequest",
    "privacy.add_datarequest",
    "privacy.change_datarequest",
)
_ADMIN_ONLY = (
    "outbox.view_outboxmessage",
    # Third parties (P24, P27) and the operator's own page-view counts (P26).
    "consent.view_thirdparty",
    "consent.add_thirdparty",
    "consent.change_thirdparty",
    "consent.view_pageview",
    "consent.view_consentrecord",
    # Product updates to customers, written and sent from the console (P5).
    "sending.view_productupdate",
    "sending.add_productupdate",
)

ROLE_PERMISSIONS: dict[str, tuple[str, ...]] = {
    Role.SUPPORT: _SUPPORT,
    Role.BILLING: _BILLING,
    Role.PRIVACY_OFFICER: _PRIVACY_OFFICER,
    Role.ADMIN: tuple(dict.fromkeys(_SUPPORT + _BILLING + _PRIVACY_OFFICER + _ADMIN_ONLY)),
}

# The group of each role, named for people reading the admin or the database.
ROLE_GROUPS: dict[str, str] = {
    Role.SUPPORT: "Support agents",
    Role.BILLING: "Billing",
    Role.PRIVACY_OFFICER: "Privacy officers",
    Role.ADMIN: "Administrators",
}


def _permission(name: str, using: str) -> Permission:
    app_label, codename = name.split(".", 1)
    if name in CUSTOM_PERMISSIONS:
        label, model, title = CUSTOM_PERMISSIONS[name]
        content_type = ContentType.objects.db_manager(using).get_by_natural_key(label, model)
        permission, _ = Permission.objects.db_manager(using).get_or_create(
            content_type=content_type, codename=codename, defaults={"name": title}
        )
        return permission
    return Permission.objects.db_manager(using).get(
        content_type__app_label=app_label, codename=codename
    )


def ensure_role_groups(using: str = DEFAULT_DB_ALIAS) -> dict[str, Group]:
    """Create or repair the group of every role; safe to run any number of times."""
    # Django creates an app's permissions when that app's post_migrate signal is sent;
    # billing and outbox come after staff, so create them here rather than depend on order.
    for label in sorted(
        {name.split(".")[0] for perms in ROLE_PERMISSIONS.values() for name in perms}
    ):
        create_permissions(global_apps.get_app_config(label), verbosity=0, using=using)
    groups = {}
    for role, names in ROLE_PERMISSIONS.items():
        group, _ = Group.objects.db_manager(using).get_or_create(name=ROLE_GROUPS[role])
        group.permissions.set([_permission(name, using) for name in names])
        groups[role] = group
    return groups


def sync_role_group(user: Person) -> None:
    """Put a staff user in the group of their role and in no other role's group."""
    wanted = ROLE_GROUPS.get(user.staff_role) if user.is_staff else None
    role_groups = Group.objects.filter(name__in=ROLE_GROUPS.values())
    user.groups.remove(*[g for g in role_groups if g.name != wanted])
    if wanted is not None:
        group = Group.objects.filter(name=wanted).first() or ensure_role_groups()[user.staff_role]
        user.groups.add(group)


def on_post_migrate(sender: Any, using: str = DEFAULT_DB_ALIAS, **kwargs: Any) -> None:
    ensure_role_groups(using)


def on_user_saved(
    sender: Any,
    instance: Person,
    created: bool = False,
    raw: bool = False,
    update_fields: Any = None,
    **kwargs: Any,
) -> None:
    # Only saves that can change the role matter: a new customer or a profile update
    # costs no query.
    if raw or (created and not instance.is_staff):
        return
    if update_fields is None or {"staff_role", "is_staff"} & set(update_fields):
        sync_role_group(instance)
