"""Imported by the render processes' fork server (`renderpool`), never elsewhere: Django
set up, the rendering modules loaded and warmed up once, so that each render process
forked from it starts at once."""

import django

django.setup()

from tidings.campaigns import rendering  # noqa: E402  (after Django is set up)

rendering.warm_up()
