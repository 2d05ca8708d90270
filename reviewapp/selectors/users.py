"""Who is who: the two roles of the product."""

from __future__ import annotations

from django.contrib.auth.models import AbstractBaseUser

ADMINS_GROUP = "admins"
REVIEWERS_GROUP = "reviewers"


def user_is_admin(user: AbstractBaseUser) -> bool:
    """Admins run studies: members of the ``admins`` group, and superusers."""
    if not user.is_authenticated:
        return False
    return user.is_superuser or user.groups.filter(name=ADMINS_GROUP).exists()


def user_is_reviewer(user: AbstractBaseUser) -> bool:
    """Reviewers answer review items: members of the ``reviewers`` group."""
    if not user.is_authenticated:
        return False
    return user.groups.filter(name=REVIEWERS_GROUP).exists()
