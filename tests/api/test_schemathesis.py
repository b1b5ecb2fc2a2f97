"""Schemathesis over the whole OpenAPI of /api/v1/ (draft)."""

from __future__ import annotations

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from tidings.accounts import apikeys
from tidings.wsgi import application

schema = schemathesis.openapi.from_wsgi("/api/v1/openapi.json", application)
schema.config.generation.update(max_examples=10, with_security_parameters=False)

CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]


@pytest.fixture
def wsgi_on_test_connection():
    from django.core.signals import request_finished, request_started
    from django.db import close_old_connections

    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    yield
    request_started.connect(close_old_connections)
    request_finished.connect(close_old_connections)


@pytest.fixture
def tenants(db, customer, other_customer, wsgi_on_test_connection):
    from tests.factories import populate_account

    out = []
    for user in (customer, other_customer):
        populate_account(user.account)
        _, key = apikeys.create_api_key(user.account, name="schemathesis", by=user)
        out.append(key)
    return out


@schema.parametrize()
@schema.given(data=st.data())
@settings(suppress_health_check=list(HealthCheck), deadline=None)
def test_api(case, data, tenants):
    key = data.draw(st.sampled_from(tenants))
    case.call_and_validate(headers={"Authorization": f"Bearer {key}"}, checks=CHECKS)
