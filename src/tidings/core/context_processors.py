from typing import Any

from django.conf import settings
from django.http import HttpRequest


def operator(request: HttpRequest) -> dict[str, Any]:
    """The operator's identity, for every page's footer and the policy."""
    return {"operator": settings.OPERATOR}
