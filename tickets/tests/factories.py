from __future__ import annotations

import factory
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group

from tickets import roles, services
from tickets.models import AgentProfile, Customer, Department, SLAPolicy, SLATarget, Ticket

DEFAULT_TARGETS = {"urgent": (15, 240), "high": (60, 480), "normal": (240, 1440), "low": (480, 4320)}


class SLAPolicyFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = SLAPolicy
        skip_postgeneration_save = True

    name = factory.Sequence(lambda n: f"Policy {n}")

    @factory.post_generation
    def targets(self, create, extracted, **kwargs):
        for priority, (first, resolution) in (extracted or DEFAULT_TARGETS).items():
            SLATarget.objects.create(
                policy=self, priority=priority, first_response_minutes=first, resolution_minutes=resolution
            )


class DepartmentFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Department

    name = factory.Sequence(lambda n: f"Queue {n}")
    slug = factory.Sequence(lambda n: f"queue-{n}")
    sla_policy = factory.SubFactory(SLAPolicyFactory)


class CustomerFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Customer

    name = factory.Faker("name")
    email = factory.Sequence(lambda n: f"customer{n}@example.com")


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = get_user_model()
        skip_postgeneration_save = True

    username = factory.Sequence(lambda n: f"user{n}")
    password = factory.django.Password("pw-for-tests")


def make_staff(*, role: str, departments=(), username: str | None = None):
    """An active staff user in the Agents or Managers group, working the given queues."""
    user = UserFactory(is_staff=True, **({"username": username} if username else {}))
    user.groups.add(Group.objects.get(name=role))
    profile = AgentProfile.objects.create(user=user)
    profile.departments.set(departments)
    return user


def make_agent(*departments, username: str | None = None):
    return make_staff(role=roles.AGENTS, departments=departments, username=username)


def make_manager(*departments, username: str | None = None):
    return make_staff(role=roles.MANAGERS, departments=departments, username=username)


def make_ticket(*, department=None, priority="normal", customer=None, subject="Help needed", body="It broke."):
    return services.ticket_create(
        customer=customer or CustomerFactory(),
        subject=subject,
        body=body,
        priority=priority,
        department=department,
    )


def set_status(ticket: Ticket, status: str) -> Ticket:
    """Test set-up only: put a ticket straight into a status without going through the machine."""
    Ticket.objects.filter(pk=ticket.pk).update(status=status)
    ticket.refresh_from_db()
    return ticket
