"""No input gets a server error: generated payloads (hypothesis, fixed seed, a bounded number of examples) go
to every operation of the API's OpenAPI schema (``/api/schema/``) and to every page's forms, as anonymous, a
reviewer and an admin; every answer must be below 500. Then the cases once found by hand, each pinned."""

from __future__ import annotations

import json
import re
import zlib
from urllib.parse import urlencode

import pytest
from django.test import Client
from hypothesis import HealthCheck, given, seed, settings
from hypothesis import strategies as st

from reviewapp.models import Annotation, LabRun, Sweep, SweepCase
from tests.factories import ProjectionFactory, StudyFactory
from tests.helpers.world import build_world, routes

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("media_root")]

ROLES = ("anonymous", "bob", "alice")  # anonymous, a reviewer, an admin
API_EXAMPLES = 12  # per operation and role
FORM_EXAMPLES = 12  # per page and role (each a POST and a GET)


def _settings(examples: int):
    return settings(
        max_examples=examples, database=None, deadline=None, suppress_health_check=list(HealthCheck)
    )


def _seed(*parts: str):
    """A fixed seed per target: every run sends the same payloads, different ones to each target."""
    return seed(zlib.crc32("|".join(parts).encode()))


HOSTILE_STRINGS = [
    "", "0", "1", "2", "-1", "2147483648", "9223372036854775808", "99999999999999999999", "1e400", "NaN",
    "Infinity", "-0", "1.5", "yes", "no", "true", "null", "draft", "submitted", "exact", "screening", "gci",
    "dip", "Pneumonia", "original", "\x00", "<script>", "../../etc/passwd", "=1+1", "é" * 3, "9" * 5000,
]  # fmt: skip
#: Besides the generated ones, every field of every target gets each of these once.
EVERY_FIELD = ["99999999999999999999", "-1", "1e400", "NaN", "\x00", "9" * 5000, ""]
HUGE_NUMBERS = [2**31, 2**63, 10**20, -(10**20), 10**30, 1e308, -1e308, 0.5]

scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-5, max_value=8),
    st.integers(),
    st.sampled_from(HUGE_NUMBERS),
    st.floats(allow_nan=False, allow_infinity=False),
    st.sampled_from(HOSTILE_STRINGS),
    st.text(max_size=20),
)
json_values = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4),
    max_leaves=10,
)


def _nested(depth: int):
    value: object = 1
    for _ in range(depth):
        value = [value]
    return value


#: Values nested beyond the API's limit (32 levels), and JSON text nested far deeper (sent as the raw body).
values = st.one_of(json_values, st.integers(30, 60).map(_nested))
deep_json_text = st.integers(33, 100_000).map(lambda depth: "[" * depth + "]" * depth)
path_ids = st.one_of(
    st.integers(1, 8).map(str), st.sampled_from(["0", "99999999999999999999", "-1", "abc", "1.5"])
)


def _resolve(schema: dict, node: dict) -> dict:
    while "$ref" in node:
        node = schema["components"]["schemas"][node["$ref"].rsplit("/", 1)[1]]
    return node


def _operations(schema: dict) -> list[tuple[str, str, list[str], list[str]]]:
    """(method, path template, query parameter names, body property names) of every operation."""
    found = []
    for path, operations in schema["paths"].items():
        for method, operation in operations.items():
            query = [p["name"] for p in operation.get("parameters", []) if p["in"] == "query"]
            body = []
            for content in operation.get("requestBody", {}).get("content", {}).values():
                body = sorted(_resolve(schema, content["schema"]).get("properties", {}))
                break
            found.append((method, path, query, body))
    return found


@pytest.fixture
def world(alice, bob, charlie):
    return build_world(alice, bob, charlie)


def _client(world, role: str) -> Client:
    client = Client()
    if role != "anonymous":
        client.force_login(getattr(world, role))
    return client


def _check(response, what: str) -> None:
    if getattr(response, "streaming", False):
        b"".join(response.streaming_content)  # a CSV fails while it streams, if at all
    assert response.status_code < 500, f"{what}: {response.status_code}"


def _send(client: Client, method: str, url: str, body, encoding: str):
    if body is None:
        return client.generic(method.upper(), url)
    if encoding == "json":
        return client.generic(method.upper(), url, json.dumps(body), content_type="application/json")
    if encoding == "raw":
        return client.generic(method.upper(), url, str(body), content_type="application/json")
    if isinstance(body, dict):
        flat = {str(k): v if isinstance(v, list) else str(v) for k, v in body.items()}
        flat = {k: [str(item) for item in v] if isinstance(v, list) else v for k, v in flat.items()}
    else:
        flat = {"value": str(body)}
    data = urlencode(flat, doseq=True)
    return client.generic(method.upper(), url, data, content_type="application/x-www-form-urlencoded")


@pytest.mark.timeout(240)
@pytest.mark.parametrize("role", ROLES)
def test_generated_api_requests_never_get_a_server_error(world, role):
    schema = _client(world, "alice").get("/api/schema/?format=json").json()
    operations = _operations(schema)
    assert len(operations) >= 25
    client = _client(world, role)

    for method, path, query_names, body_names in operations:
        for value in EVERY_FIELD:
            url = path.replace("{id}", "1") + "?" + urlencode({name: value for name in query_names})
            body = {name: value for name in body_names}
            for encoding in ("json", "form"):
                response = _send(client, method, url, body if method != "get" else None, encoding)
                _check(response, f"{role} {method.upper()} {url} {encoding} {value[:20]!r} in every field")
        _api_requests(client, role, method, path, query_names, body_names)()


def _api_requests(client: Client, role: str, method: str, path: str, query_names, body_names):
    """A hypothesis test of one operation: generated ids, query strings and bodies (JSON, form-encoded or
    not JSON at all)."""

    @_seed(role, method, path)
    @_settings(API_EXAMPLES)
    @given(
        pk=path_ids,
        query=st.dictionaries(
            st.sampled_from(query_names or ["page"]), st.sampled_from(HOSTILE_STRINGS), max_size=3
        ),
        body=st.one_of(
            st.fixed_dictionaries({}, optional={name: values for name in body_names}),
            st.dictionaries(st.text(max_size=10), values, max_size=3),
            values,
            deep_json_text,
        ),
        encoding=st.sampled_from(["json", "json", "form", "raw"]),
    )
    def request(pk, query, body, encoding):
        url = path.replace("{id}", pk) + ("?" + urlencode(query) if query else "")
        response = _send(client, method, url, body if method != "get" else None, encoding)
        _check(response, f"{role} {method.upper()} {url} {encoding} {str(body)[:300]}")

    return request


FIELD_NAME = re.compile(r"<(?:input|select|textarea)\b[^>]*\bname=\"([^\"]+)\"", re.I)
FORM = re.compile(r"<form\b([^>]*)>(.*?)</form>", re.S | re.I)
ACTION = re.compile(r"action=\"([^\"]*)\"", re.I)


def _form_fields(client: Client, pages: list[str]) -> dict[str, list[str]]:
    """Field names of the forms on ``pages``, by the URL they post to."""
    fields: dict[str, set[str]] = {}
    for page in pages:
        response = client.get(page)
        if response.status_code != 200 or "text/html" not in response.get("Content-Type", ""):
            continue
        for attributes, body in FORM.findall(response.content.decode()):
            action = ACTION.search(attributes)
            target = action.group(1) if action and action.group(1) else page
            names = set(FIELD_NAME.findall(body)) - {"csrfmiddlewaretoken"}
            fields.setdefault(target.split("?")[0], set()).update(names)
    return {url: sorted(names) for url, names in fields.items()}


@pytest.mark.timeout(240)
@pytest.mark.parametrize("role", ROLES)
def test_generated_form_posts_never_get_a_server_error(world, role):
    """Every page's URL gets generated form posts (GET-only pages answer 405), with the field names of the
    forms that post to it (as the pages show them to an admin and to a reviewer) and values meant to break
    them: huge and negative numbers, ids of other objects, NUL characters, very long text."""
    values = world.values()
    # /healthz takes no input and answers 503 without a worker, after waiting for one: left out.
    pages = [
        route.url(values)
        for route in routes()
        if not route.is_api and not route.is_admin_site and route.name != "healthz"
    ]
    fields: dict[str, set[str]] = {}
    for viewer in ("alice", "bob"):
        for url, names in _form_fields(_client(world, viewer), pages).items():
            fields.setdefault(url, set()).update(names)
    assert sum(len(names) for names in fields.values()) > 40
    client = _client(world, role)
    form_values = st.one_of(
        st.sampled_from(HOSTILE_STRINGS),
        st.sampled_from(HUGE_NUMBERS).map(str),
        st.integers(-3, 8).map(str),
        st.text(max_size=30),
    )

    for url in pages:
        names = sorted(fields.get(url, ())) or ["value"]
        for value in EVERY_FIELD:
            _check(
                client.post(url, dict.fromkeys(names, value)),
                f"{role} POST {url} {value[:20]!r} in every field",
            )
        _form_posts(client, role, url, names, form_values)()


def _form_posts(client: Client, role: str, url: str, names: list[str], form_values):
    """A hypothesis test of one page: generated posts of its forms' fields (and a few others), and a GET
    with generated query parameters."""

    @_seed(role, url)
    @_settings(FORM_EXAMPLES)
    @given(
        data=st.one_of(
            st.fixed_dictionaries(
                {name: st.one_of(form_values, st.lists(form_values, max_size=3)) for name in names}
            ),
            st.fixed_dictionaries({}, optional={name: form_values for name in names}),
        ),
        extra=st.dictionaries(st.text(min_size=1, max_size=8), form_values, max_size=2),
        query=st.dictionaries(
            st.sampled_from(["page", "sort", "case", "run", "after", "dims", "split", "s"]),
            form_values,
            max_size=2,
        ),
    )
    def post(data, extra, query):
        target = url + ("?" + urlencode(query) if query else "")
        _check(client.post(target, {**extra, **data}), f"{role} POST {target} {str(data)[:300]}")
        _check(client.get(target), f"{role} GET {target}")

    return post


# --------------------------------------------------------------------------------------------------
# The cases found by hand, pinned


@pytest.fixture
def api_alice(alice) -> Client:
    client = Client()
    client.force_login(alice)
    return client


@pytest.fixture
def ready_study():
    study = StudyFactory(ranges_path="studies/1/ranges.pt")
    ProjectionFactory(case__study=study)
    return study


def _post_json(client: Client, url: str, body) -> object:
    text = body if isinstance(body, str) else json.dumps(body)
    return client.post(url, text, content_type="application/json")


def test_a_case_given_twice_is_a_400_and_nothing_is_stored(api_alice, ready_study):
    case = ready_study.cases.get()
    response = _post_json(api_alice, "/api/sweeps/", {"study": ready_study.pk, "cases": [case.pk, case.pk]})
    assert response.status_code == 400 and "once" in response.json()["cases"][0]
    assert not Sweep.objects.exists() and not SweepCase.objects.exists()


@pytest.mark.parametrize("url", ["/api/sweeps/", "/api/annotations/", "/api/lab-runs/"])
def test_deeply_nested_json_is_a_400(api_alice, bob, url):
    deep = "[" * 100_000 + "]" * 100_000
    assert _post_json(api_alice, url, deep).status_code == 400
    reviewer = Client()
    reviewer.force_login(bob)
    response = _post_json(reviewer, url, {"item": 1, "comment": _nested(40)})
    assert response.status_code in (400, 403)


def test_huge_integers_in_forms_urls_and_queries_are_refused(api_alice, ready_study):
    case = ready_study.cases.get()
    huge = "99999999999999999999"
    form = {"cases": [huge], "mode": "exact", "screening_top_k": 64, "aggregate": "mean_abs", "delta": 0.3}
    response = api_alice.post(f"/studies/{ready_study.pk}/sweeps/new", {**form, "min_fraction": 0.1})
    assert response.status_code == 400 and not Sweep.objects.exists()
    assert api_alice.get(f"/studies/{ready_study.pk}/lab/compare?run={huge}").status_code == 400
    assert api_alice.get(f"/studies/{ready_study.pk}/lab/compare?case={huge}").status_code == 400
    assert api_alice.get(f"/studies/{ready_study.pk}/lab/compare?case={case.pk}").status_code == 200
    assert api_alice.get(f"/studies/{huge}/").status_code == 404
    assert api_alice.get(f"/sweeps/{'9' * 40}/").status_code == 404
    assert api_alice.get(f"/api/annotations/?review_set={huge}").status_code == 400
    assert api_alice.get(f"/api/sweeps/{huge}/").status_code == 404
    assert (
        _post_json(api_alice, "/api/sweeps/", {"study": ready_study.pk, "cases": [int(huge)]}).status_code
        == 400
    )


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"screening_top_k": 10**12}, "screening_top_k"),
        ({"top_k": 10**12}, "top_k"),
        ({"min_ssim": 5}, "min_ssim"),
        ({"max_perceptual": -1}, "max_perceptual"),
        ({"strongest_k": 10**20}, "strongest_k"),
    ],
)
def test_the_sweep_api_refuses_what_the_form_refuses(api_alice, ready_study, body, field):
    response = _post_json(api_alice, "/api/sweeps/", {"study": ready_study.pk, **body})
    assert response.status_code == 400 and field in response.json()
    assert not Sweep.objects.exists()


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"parameters": {"steps": 10**30}}, "steps must be at most 1024"),
        ({"parameters": {"batch_size": 10**9}}, "batch_size must be at most 256"),
        ({"method": "dip", "parameters": {"channels": [10**6] * 4}}, "must be at most 512"),
        ({"method": "dip", "parameters": {"path_frames": 10**6}}, "path_frames must be at most 200"),
        ({"target": "-1"}, "target must be 0, 1"),
        ({"parameters": {"baseline": "blur\x00"}}, "NUL"),
        ({"steps": 5}, "Not a field"),
    ],
)
def test_the_lab_api_refuses_what_would_exhaust_the_worker(api_alice, ready_study, body, message):
    case = ready_study.cases.get()
    request = {
        "study": ready_study.pk,
        "case": case.pk,
        "method": "integrated_gradients",
        "target": "1",
        **body,
    }
    response = _post_json(api_alice, "/api/lab-runs/", request)
    assert response.status_code == 400 and message in response.content.decode(), response.content
    assert not LabRun.objects.exists()


def test_a_huge_reading_time_is_clamped_not_stored(bob):
    """Each save adds at most the service's limit of reading time, however large the number sent."""
    from reviewapp.services.annotations import MAX_SECONDS_PER_SAVE
    from tests.helpers.reviews import review_set_with_items

    review_set = review_set_with_items(readers=[bob], dimensions=1, images_per_dimension=1)
    client = Client()
    client.force_login(bob)
    item = review_set.items.get()
    response = _post_json(client, "/api/annotations/", {"item": item.pk, "seconds": 10**20})
    assert response.status_code == 201, response.content
    response = client.post(f"/reviews/{review_set.pk}/items/1/draft", {"seconds": str(10**20)})
    assert response.status_code == 200
    assert Annotation.objects.get().time_spent_seconds == 2 * MAX_SECONDS_PER_SAVE
