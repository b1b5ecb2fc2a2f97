"""Imported by the render processes' fork server (`renderpool`), never elsewhere: Django
set up and the rendering modules loaded once, so that each render process forked from
it starts at once."""

import django

django.setup()

from tidings.campaigns import rendering  # noqa: E402, F401  (after Django is set up)
