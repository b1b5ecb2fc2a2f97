"""An HTTP API client with an account's key, for the tests that call the API."""

from __future__ import annotations

import json
from typing import Any

from tidings.transfer import services


class Api:
    def __init__(self, client, key: str) -> None:  # type: ignore[no-untyped-def]
        self.client = client
        self.headers = {"Authorization": f"Bearer {key}"}

    def __call__(self, method: str, path: str, body: Any = None):  # type: ignore[no-untyped-def]
        kwargs: dict[str, Any] = {"headers": self.headers}
        if body is not None:
            kwargs |= {"data": json.dumps(body), "content_type": "application/json"}
        return getattr(self.client, method)(f"/api/v1{path}", **kwargs)

    def upload(self, content: bytes, name: str = "contacts.csv"):  # type: ignore[no-untyped-def]
        """A file as the request body, as `curl --data-binary` sends it."""
        return self.client.post(
            f"/api/v1/imports?name={name}",
            data=content,
            content_type="application/octet-stream",
            headers=self.headers,
        )

    def analysed(self, content: bytes, name: str = "contacts.csv") -> dict[str, Any]:
        """Upload, then the analysis the worker runs after the upload's commit, and the
        import as `GET /imports/{id}` shows it then."""
        response = self.upload(content, name)
        assert response.status_code == 201, response.content
        assert response.json()["status"] == "analysing"
        services.analyse_upload(response.json()["id"])
        return self("get", f"/imports/{response.json()['id']}").json()  # type: ignore[no-any-return]
