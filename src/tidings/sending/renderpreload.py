"""Imported by the render processes' fork server (`campaigns.renderpool`), never
elsewhere: the message-making modules, and every URL pattern loaded (each message's links
are made with reverse(), and loading the patterns imports every app's views: most of a
second, seconds on a busy machine), so that no render process pays for them on its first
message. The Celery workers load theirs when they start (`tasks.load_url_patterns`)."""

from django.urls import get_resolver

from tidings.sending import mailer  # noqa: F401  (the modules a message needs)

get_resolver().reverse_dict  # noqa: B018
