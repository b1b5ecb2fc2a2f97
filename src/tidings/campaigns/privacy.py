"""Data map entries for campaigns."""

from tidings.campaigns.models import Campaign, Layout
from tidings.privacy.datamap import declare_free_of_personal_data

declare_free_of_personal_data(Campaign, "the customer's campaign content and settings")
declare_free_of_personal_data(Layout, "the customer's HTML layouts")
