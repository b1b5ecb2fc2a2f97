"""The chat benchmark's side in Django (bench/chat_load.py runs it as a child process):
Django is configured on the bench database before anything of Tidings is imported.

    python bench/chat_child.py setup CHATS | stored '[PKS]'
"""

from __future__ import annotations

import json
import sys
import time

import benchdb

benchdb.setup()

from django.conf import settings  # noqa: E402  (Django is configured just above)
from django.db import connection  # noqa: E402
from django.test import Client  # noqa: E402
from django_otp import DEVICE_ID_SESSION_KEY  # noqa: E402
from django_otp.plugins.otp_totp.models import TOTPDevice  # noqa: E402

from tidings.accounts.models import User  # noqa: E402
from tidings.desk import chat  # noqa: E402
from tidings.desk.models import Channel, Message  # noqa: E402
from tidings.staff.reason import SESSION_KEY  # noqa: E402


def setup(chats: int) -> dict:
    """An agent logged in with a verified second factor and a stated reason (their
    session cookie), and `chats` chats opened by visitors and taken by that agent."""
    with connection.cursor() as cursor:
        cursor.execute("TRUNCATE desk_conversation CASCADE")
    agent = User.objects.filter(email="bench-agent@operator.example").first()
    if agent is None:
        agent = User.objects.create_user(
            email="bench-agent@operator.example", name="Bench Agent", is_staff=True
        )
    agent.staff_role = User.StaffRole.SUPPORT
    agent.save()
    device, _ = TOTPDevice.objects.get_or_create(user=agent, name="bench", confirmed=True)
    client = Client()
    client.force_login(agent)
    session = client.session
    session[DEVICE_ID_SESSION_KEY] = device.persistent_id
    session[SESSION_KEY] = {"text": "benchmark", "until": time.time() + 3600}
    session.save()
    opened = []
    for i in range(chats):
        conversation = chat.start(body=f"Hello {i}", email=f"visitor{i}@example.org")
        chat.take(conversation, by=agent)
        opened.append({"pk": conversation.pk, "token": chat.token_for(conversation)})
    return {
        "cookie": f"{settings.SESSION_COOKIE_NAME}={session.session_key}",
        "chats": opened,
    }


def stored(pks: list[int]) -> int:
    """The chat messages in the database (the visitors' first messages left out)."""
    total = Message.objects.filter(conversation_id__in=pks, channel=Channel.CHAT).count()
    return total - len(pks)


if __name__ == "__main__":
    if sys.argv[1] == "setup":
        print(json.dumps(setup(int(sys.argv[2]))))
    elif sys.argv[1] == "stored":
        print(json.dumps({"stored": stored(json.loads(sys.argv[2]))}))
    else:
        sys.exit(f"unknown step {sys.argv[1]!r}")
