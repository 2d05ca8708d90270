"""Creating the people who use the product."""

from __future__ import annotations

from django.contrib.auth import get_user_model
from django.contrib.auth.models import AbstractUser, Group
from django.contrib.auth.password_validation import validate_password
from django.db import transaction

from reviewapp.selectors.users import ADMINS_GROUP, REVIEWERS_GROUP

ROLE_GROUPS = {"admin": ADMINS_GROUP, "reviewer": REVIEWERS_GROUP}


@transaction.atomic
def user_create(*, username: str, email: str = "", password: str, role: str) -> AbstractUser:
    """A new user in the group of ``role`` ("admin" or "reviewer").

    Admins also get the Django admin (staff and superuser): they are the researchers who run the
    installation. Raises ``ValueError`` for an unknown role or a taken username and Django's
    ``ValidationError`` for a weak password.
    """
    if role not in ROLE_GROUPS:
        raise ValueError(f"Unknown role {role!r}; expected one of {', '.join(sorted(ROLE_GROUPS))}.")
    User = get_user_model()
    if User.objects.filter(username=username).exists():
        raise ValueError(f"The username {username!r} is taken.")
    user = User(username=username, email=email, is_staff=role == "admin", is_superuser=role == "admin")
    validate_password(password, user=user)
    user.set_password(password)
    user.full_clean(exclude=["password"])
    user.save()
    # get_or_create: the groups come from a data migration, but test databases flushed between
    # transactional tests lose them.
    group, _ = Group.objects.get_or_create(name=ROLE_GROUPS[role])
    user.groups.add(group)
    return user


@transaction.atomic
def user_set_password(*, user: AbstractUser, password: str) -> None:
    user.set_password(password)
    user.save(update_fields=["password"])
