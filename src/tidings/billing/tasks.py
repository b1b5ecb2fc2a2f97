from celery import shared_task

from tidings.billing import cancellation, dunning, renewals, services


@shared_task
def retry_vies_checks() -> int:
    return services.retry_vies_checks()


@shared_task
def run_renewals() -> dict[str, int]:
    """Open the renewals due (gateways that do not renew by themselves), then take the
    dunning steps due (days 3, 7 and 14 after a failed renewal). Idempotent."""
    return {"renewals opened": renewals.renew_due(), "dunning steps": dunning.advance()}


@shared_task
def sweep_recharges() -> int:
    """Run the recharge job of each account whose automatic recharge is due but was not
    made (its job lost, the gateway down); each decides again under its lock."""
    return services.sweep_recharges()


@shared_task
def run_recharge(account_id: int) -> str:
    """Recharge the account's credits if its automatic recharge is due (billing.recharge):
    queued when spending leaves them below its threshold. Idempotent."""
    return services.run_recharge(account_id)


@shared_task
def cancel_at_gateways() -> int:
    """Cancel at the gateway the plans of closed accounts (queued by the close, and
    every ten minutes for those the gateway did not answer). Idempotent."""
    return cancellation.cancel_due()
