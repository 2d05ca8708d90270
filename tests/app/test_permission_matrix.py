"""Who reaches what: every URL pattern of the project (taken from the URL resolver, so a new one cannot be left
out) visited as anonymous, a reviewer (bob), another reviewer (charlie) and an admin (alice), each answer
compared with the expected status; a reviewer never reaches another reviewer's objects by guessing ids;
stored files only through the signed-in views with ``Cache-Control: private``; every form needs a CSRF
token."""

from __future__ import annotations

import re

import pytest
from django.test import Client

from reviewapp.models import (
    Annotation,
    FactorAnnotation,
    Job,
    LabRun,
    ReviewAssignment,
    ReviewItem,
    ReviewSet,
    Study,
    Sweep,
)
from tests.helpers.world import build_world, routes

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("media_root")]

ROLES = ("anonymous", "bob", "charlie", "alice")
ANY_OK = frozenset(range(200, 500))  # the admin site as an admin: its own pages, redirects and 404s

ADMIN_PAGE = (302, 403, 403, 200)
ADMIN_POST_ONLY = (302, 403, 403, 405)  # a GET on a view that only takes POST
API_ADMIN = (401, 403, 403, 200)
API_ANYONE = (401, 200, 200, 200)
API_BOBS = (401, 200, 404, 200)  # an object of bob's: charlie cannot tell it exists
READER_BOBS = (302, 200, 404, 403)
READER_POST_ONLY = (302, 405, 405, 403)

#: Expected status of a GET per route (DRF's format-suffixed routes behave as their base route), for
#: (anonymous, bob, charlie, alice). Bob's objects are in the URLs (``tests.helpers.world``).
EXPECTED: dict[str, tuple] = {
    "": (302, 200, 200, 200),
    "accounts/login/": (200, 302, 302, 302),
    "accounts/logout/": (302, 405, 405, 405),
    "jobs/": (302, 200, 200, 200),  # each sees the jobs they may see (admins: all)
    "jobs/<id:pk>/progress": (302, 404, 404, 200),
    "favicon.ico": (301, 301, 301, 301),
    "audit.csv": ADMIN_PAGE,
    "healthz": ({200, 503},) * 4,
    "api/auth/token/": (405, 405, 405, 405),
    "api/schema/": API_ANYONE,
    "api/docs/": (302, 200, 200, 200),
    "api/redoc/": (302, 200, 200, 200),
    "api/": API_ANYONE,
    "api/^studies/$": API_ADMIN,
    "api/^studies/(?P<pk>[^/.]+)/$": API_ADMIN,
    "api/^studies/(?P<pk>[^/.]+)/factors-csv/$": API_ADMIN,
    "api/^cases/$": API_ADMIN,
    "api/^cases/(?P<pk>[^/.]+)/$": API_ADMIN,
    "api/^sweeps/$": API_ADMIN,
    "api/^sweeps/(?P<pk>[^/.]+)/$": API_ADMIN,
    "api/^sweeps/(?P<pk>[^/.]+)/dimensions-csv/$": API_ADMIN,
    "api/^dimensions/$": API_ADMIN,
    "api/^dimensions/(?P<pk>[^/.]+)/$": API_ADMIN,
    "api/^lab-runs/$": API_ADMIN,
    "api/^lab-runs/(?P<pk>[^/.]+)/$": API_ADMIN,
    "api/^review-sets/$": API_ANYONE,
    "api/^review-sets/(?P<pk>[^/.]+)/$": API_BOBS,
    "api/^review-sets/(?P<pk>[^/.]+)/export/$": API_ADMIN,
    "api/^review-sets/(?P<pk>[^/.]+)/results/$": API_ADMIN,
    "api/^items/$": API_ANYONE,
    "api/^items/(?P<pk>[^/.]+)/$": API_BOBS,
    "api/^annotations/$": API_ANYONE,
    "api/^annotations/(?P<pk>[^/.]+)/$": API_BOBS,
    "api/^annotations/show-explanation/$": (401, 405, 405, 405),  # POST only
    "api/^factor-annotations/$": API_ANYONE,
    "api/^factor-annotations/(?P<pk>[^/.]+)/$": API_BOBS,
    "reviews/": (302, 200, 200, 403),
    "reviews/<id:set_pk>/": READER_BOBS,
    "reviews/<id:set_pk>/resume": (302, 302, 404, 403),
    "reviews/<id:set_pk>/finalise": READER_POST_ONLY,
    "reviews/<id:set_pk>/items/<id:position>/": READER_BOBS,
    "reviews/<id:set_pk>/items/<id:position>/draft": READER_POST_ONLY,
    "reviews/<id:set_pk>/items/<id:position>/show-explanation": READER_POST_ONLY,
    "reviews/<id:set_pk>/items/<id:position>/<str:kind>": READER_BOBS,
    "reviews/<id:set_pk>/items/<id:position>/source-pixels": READER_BOBS,
    "reviews/<id:set_pk>/factors/<id:number>/": READER_BOBS,
    "review-sets/<id:pk>/results/": ADMIN_PAGE,
    "review-sets/<id:pk>/export/reviews.csv": ADMIN_PAGE,
    "review-sets/<id:pk>/export/agreement.csv": ADMIN_PAGE,
    "studies/<id:pk>/factors/": ADMIN_PAGE,
    "studies/<id:pk>/factors.csv": ADMIN_PAGE,
    "sweeps/<id:pk>/export/dimensions.csv": ADMIN_PAGE,
    # A reviewer explores the cases of a set they finalised; the study's models are not loadable here, so
    # the page says so and a render is a 400.
    "explore/cases/<id:case_pk>/": (302, 200, 404, 200),
    "explore/cases/<id:case_pk>/render": (302, 400, 404, 400),
    "explore/cases/<id:case_pk>/<str:kind>.png": (302, 200, 404, 200),
    "media/<path:path>": ADMIN_PAGE,
    "studies/new": ADMIN_PAGE,
    "studies/<id:pk>/": ADMIN_PAGE,
    "studies/<id:pk>/cases/upload": ADMIN_POST_ONLY,
    "studies/<id:pk>/projections/retry": ADMIN_POST_ONLY,
    "studies/<id:pk>/ranges/estimate": ADMIN_POST_ONLY,
    "studies/<id:pk>/sweeps/new": ADMIN_PAGE,
    "studies/<id:pk>/lab/": ADMIN_PAGE,
    "studies/<id:pk>/lab/compare": ADMIN_PAGE,
    "lab-runs/<id:pk>/": ADMIN_PAGE,
    "lab-runs/<id:pk>/cancel": ADMIN_POST_ONLY,
    "lab-runs/<id:pk>/add-to-review-set": ADMIN_POST_ONLY,
    "sweeps/<id:pk>/": ADMIN_PAGE,
    "sweeps/<id:pk>/cancel": ADMIN_POST_ONLY,
    "sweeps/<id:pk>/resume": ADMIN_POST_ONLY,
    "sweeps/<id:pk>/progress": ADMIN_PAGE,
    "sweeps/<id:pk>/dimensions/<id:dim>/": ADMIN_PAGE,
    "sweeps/<id:pk>/dimensions/<id:dim>/render": ADMIN_POST_ONLY,
    "sweeps/<id:pk>/review-sets/new": ADMIN_PAGE,
    "review-sets/<id:pk>/": ADMIN_PAGE,
    "review-sets/<id:pk>/assign": ADMIN_POST_ONLY,
    "review-sets/<id:pk>/readers/<id:reader_pk>/unassign": ADMIN_POST_ONLY,
}

#: The admin site: its log-in page, its POST-only log-out, and everything else only for staff (admins).
ADMIN_SITE = {
    "admin/login/": (200, 200, 200, 302),
    "admin/logout/": (302, 302, 302, 405),
}
ADMIN_SITE_DEFAULT = (302, 302, 302, ANY_OK)

#: Views whose 200 answers carry a stored image.
FILE_ROUTES = {
    "media/<path:path>",
    "reviews/<id:set_pk>/items/<id:position>/<str:kind>",
    "explore/cases/<id:case_pk>/<str:kind>.png",
}


@pytest.fixture
def world(alice, bob, charlie):
    return build_world(alice, bob, charlie)


@pytest.fixture
def clients(world) -> dict[str, Client]:
    made = {"anonymous": Client()}
    for role in ("bob", "charlie", "alice"):
        made[role] = Client()
        made[role].force_login(getattr(world, role))
    return made


def _expected(route) -> tuple:
    if route.is_admin_site:
        return ADMIN_SITE.get(route.route, ADMIN_SITE_DEFAULT)
    return EXPECTED[route.key]


def _matches(status: int, expected) -> bool:
    return status in expected if isinstance(expected, set | frozenset) else status == expected


def test_every_route_of_the_project_has_an_expected_status():
    keys = {route.key for route in routes() if not route.is_admin_site}
    assert keys == set(EXPECTED), (
        f"routes without an expected status: {sorted(keys - set(EXPECTED))}; "
        f"expected statuses of routes that no longer exist: {sorted(set(EXPECTED) - keys)}"
    )
    assert len(list(routes())) > 100  # the API's format suffixes and the admin site are enumerated too


def test_every_route_answers_each_role_as_expected(world, clients):
    values = world.values()
    wrong = []
    for route in routes():
        url = route.url(values)
        for role, expected in zip(ROLES, _expected(route), strict=True):
            response = clients[role].get(url)
            if not _matches(response.status_code, expected):
                wrong.append(f"{role} GET {url} ({route.key}): {response.status_code}, expected {expected}")
            elif response.status_code == 302 and role in ("anonymous", "bob", "charlie"):
                if (route.is_admin_site or role == "anonymous") and "logout" not in route.route:
                    assert "login" in response["Location"], (role, url, response["Location"])
            if response.status_code == 200 and route.key in FILE_ROUTES:
                cache = response.get("Cache-Control", "")
                if "private" not in cache or "public" in cache:
                    wrong.append(f"{role} GET {url}: Cache-Control {cache!r}")
    assert not wrong, "\n".join(wrong)


def _row_counts() -> dict[str, int]:
    models = (
        Annotation,
        FactorAnnotation,
        Job,
        LabRun,
        ReviewAssignment,
        ReviewItem,
        ReviewSet,
        Study,
        Sweep,
    )
    counts = {model.__name__: model.objects.count() for model in models}
    counts["submitted"] = Annotation.objects.filter(is_draft=False).count()
    counts["cancel_requested"] = Job.objects.filter(cancel_requested=True).count()
    return counts


def test_who_may_not_use_a_route_cannot_post_to_it_either(world, clients):
    """A POST from a role whose GET is refused (or from charlie on bob's objects) changes nothing."""
    values = world.values()
    before = _row_counts()
    wrong = []
    for route in routes():
        if route.is_admin_site or route.key in ("accounts/login/", "accounts/logout/", "api/auth/token/"):
            continue
        url = route.url(values)
        for role, expected in zip(ROLES, EXPECTED[route.key], strict=True):
            if expected not in (302, 401, 403, 404) or (expected == 302 and role != "anonymous"):
                continue
            payload = {"comment": "not mine", "q1_meaningful": "yes", "readers": [world.charlie.pk]}
            response = clients[role].post(url, payload)
            refused = response.status_code in (401, 403, 404, 405) or (
                response.status_code == 302 and "login" in response["Location"]
            )
            if not refused:
                wrong.append(f"{role} POST {url}: {response.status_code}")
    assert not wrong, "\n".join(wrong)
    assert _row_counts() == before


def test_a_reviewer_guessing_ids_reaches_only_their_own_objects(world, clients):
    charlie = clients["charlie"]
    charlie_sets = {world.charlie_set.pk}
    for model, url, own in (
        (Annotation, "/api/annotations/{}/", {world.charlie_annotation.pk}),
        (FactorAnnotation, "/api/factor-annotations/{}/", {world.charlie_factor.pk}),
        (ReviewItem, "/api/items/{}/", set(world.charlie_set.items.values_list("pk", flat=True))),
        (ReviewSet, "/api/review-sets/{}/", charlie_sets),
    ):
        highest = model.objects.order_by("-pk").values_list("pk", flat=True).first()
        reached = {pk for pk in range(1, highest + 3) if charlie.get(url.format(pk)).status_code == 200}
        assert reached == own, model.__name__
    for review_set in ReviewSet.objects.all():
        status = charlie.get(f"/reviews/{review_set.pk}/").status_code
        assert status == (200 if review_set.pk in charlie_sets else 404)
        assert charlie.post(f"/reviews/{review_set.pk}/items/1/draft", {"comment": "x"}).status_code == (
            200 if review_set.pk in charlie_sets else 404
        )
    bob_answer = Annotation.objects.get(pk=world.bob_annotation.pk)
    assert bob_answer.comment != "x"
    patch = charlie.patch(
        f"/api/annotations/{bob_answer.pk}/", {"comment": "x"}, content_type="application/json"
    )
    assert patch.status_code == 404
    post = charlie.post(
        "/api/annotations/", {"item": world.bob_item.pk, "comment": "x"}, content_type="application/json"
    )
    assert post.status_code == 400 and "not assigned" in post.content.decode()
    for case_pk in {item.case.pk for item in ReviewItem.objects.all()}:
        assert charlie.get(f"/explore/cases/{case_pk}/").status_code == 404
    assert Annotation.objects.filter(comment="x").exclude(reader=world.charlie).count() == 0


def test_stored_files_are_served_only_through_the_signed_in_views(world, clients):
    from django.conf import settings

    name = world.bob_item.case.image.name
    # Nothing serves MEDIA_ROOT as static files: the only route to a stored file is the media view.
    assert not any(
        route.route.startswith(settings.MEDIA_URL.strip("/")) and route.name != "media" for route in routes()
    )
    anonymous = clients["anonymous"].get(f"/media/{name}")
    assert anonymous.status_code == 302 and "login" in anonymous["Location"]
    for role in ("bob", "charlie"):
        assert clients[role].get(f"/media/{name}").status_code == 403
    response = clients["alice"].get(f"/media/{name}")
    assert response.status_code == 200
    assert "private" in response["Cache-Control"] and "public" not in response["Cache-Control"]
    assert b"".join(response.streaming_content).startswith(b"\x89PNG")
    assert clients["alice"].get("/media/../settings.py").status_code in (400, 404)


def test_every_post_needs_a_csrf_token(world):
    """With CSRF checks on (as in a browser), a POST without the token is refused on every route, the log-in
    page and the API's session-authenticated requests included; only the API's token log-in, which takes
    credentials and no session, is exempt."""
    values = world.values()
    wrong = []
    for role in ("alice", "bob"):
        client = Client(enforce_csrf_checks=True)
        client.force_login(getattr(world, role))
        for route in routes():
            if route.key == "api/auth/token/":
                continue
            url = route.url(values)
            response = client.post(url, {"comment": "x"})
            # The API's HTML docs pages render their 403 without the reason.
            says_csrf = b"CSRF" in response.content or route.key in ("api/docs/", "api/redoc/")
            if response.status_code != 403 or not says_csrf:
                wrong.append(f"{role} POST {url}: {response.status_code}")
    assert not wrong, "\n".join(wrong)
    assert not Annotation.objects.filter(comment="x").exists()


FORM = re.compile(r"<form\b[^>]*>.*?</form>", re.S | re.I)


def test_every_rendered_form_that_posts_carries_the_csrf_token(world, clients):
    values = world.values()
    forms_seen = 0
    for role in ("bob", "alice"):
        for route in routes():
            if route.is_admin_site or route.is_api:
                continue
            response = clients[role].get(route.url(values))
            if response.status_code != 200 or "text/html" not in response.get("Content-Type", ""):
                continue
            for form in FORM.findall(response.content.decode()):
                if re.search(r"method=[\"']?post", form, re.I):
                    forms_seen += 1
                    assert 'name="csrfmiddlewaretoken"' in form, (role, route.route, form[:200])
    assert forms_seen >= 10
