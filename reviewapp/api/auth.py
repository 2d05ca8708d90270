"""The API's token log-in, with the log-in throttling of the log-in page."""

from __future__ import annotations

from rest_framework import status
from rest_framework.authtoken.views import ObtainAuthToken
from rest_framework.parsers import FormParser, MultiPartParser
from rest_framework.response import Response

from reviewapp.api.parsers import BoundedJSONParser
from reviewapp.services.login_throttle import login_lockout


class ThrottledObtainAuthToken(ObtainAuthToken):
    """``POST username, password`` -> ``{"token": ...}``; 429 with ``Retry-After`` while locked out."""

    # DRF's view names its own parsers; its JSON parser has no bound on nesting.
    parser_classes = (FormParser, MultiPartParser, BoundedJSONParser)

    def post(self, request, *args, **kwargs):
        username = request.data.get("username") if hasattr(request.data, "get") else None
        lockout = login_lockout(username=username if isinstance(username, str) else None, request=request)
        if lockout is not None:
            return Response(
                {"detail": lockout.message, "retry_after": lockout.seconds},
                status=status.HTTP_429_TOO_MANY_REQUESTS,
                headers={"Retry-After": str(lockout.seconds)},
            )
        return super().post(request, *args, **kwargs)


obtain_auth_token = ThrottledObtainAuthToken.as_view()
