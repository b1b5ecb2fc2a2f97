"""Settings for the web benchmark only (bench/web_load.py): the product's, with a URLconf
that adds a bare view beside the product's URLs. Never used outside bench/."""

from tidings.settings import *  # noqa: F403

ROOT_URLCONF = "web_urls"
