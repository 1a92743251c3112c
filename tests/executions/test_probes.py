"""Probes: a read compiled once per database answers for any time, as its queryset would."""

from datetime import datetime, timedelta

import pytest
from django.db.models import QuerySet
from django.utils import timezone

from executions.models import Execution, ExecutionStatus
from executions.probes import Probe
from tests import factories

pytestmark = pytest.mark.django_db


def test_a_probe_finds_a_lapsed_lease_exactly_from_its_expiry_on(math_workflow) -> None:
    lapsed = factories.lapse(factories.execution(status="running", workflow=math_workflow))
    expiry = Execution.objects.get(pk=lapsed.pk).lease_expires_at
    assert expiry is not None
    probe = Probe(lambda now: Execution.objects.lapsed_leases(now))

    assert not probe.any(expiry)
    assert probe.any(expiry + timedelta(microseconds=1))
    assert not probe.any(expiry - timedelta(days=1))


def test_a_probe_is_compiled_once_then_only_run(math_workflow, django_assert_num_queries) -> None:
    factories.execution(status="running", workflow=math_workflow)
    probe = Probe(lambda now: Execution.objects.lapsed_leases(now))
    probe.any(timezone.now())
    built: list[datetime] = []

    def build(now: datetime) -> QuerySet[Execution]:
        built.append(now)
        return Execution.objects.lapsed_leases(now)

    probe._build = build

    with django_assert_num_queries(3):
        answers = [probe.any(timezone.now() + timedelta(hours=hours)) for hours in (0, 1, 2)]

    assert built == []
    assert answers == [False, True, True]


def test_a_probe_without_a_time_answers_as_its_queryset(math_workflow) -> None:
    probe = Probe(lambda _: Execution.objects.filter(status=ExecutionStatus.CANCELLED))
    assert not probe.any()
    factories.execution(status="cancelled", workflow=math_workflow)
    assert probe.any()
