"""Data map entries for campaigns."""

from tidings.campaigns.models import Campaign, Layout
from tidings.core.datamap import declare_free_of_personal_data

# Not personal data, but the customer's application data: in their archive (P20).
declare_free_of_personal_data(
    Campaign, "the customer's campaign content and settings", account_path="account"
)
declare_free_of_personal_data(Layout, "the customer's HTML layouts", account_path="account")
declare_free_of_personal_data(
    Campaign.lists.through, "which lists a campaign goes to", account_path="campaign__account"
)
declare_free_of_personal_data(
    Campaign.segments.through,
    "which segments a campaign goes to",
    account_path="campaign__account",
)
