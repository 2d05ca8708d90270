"""Who reaches what in the API: admins everything, reviewers only their sets and their own answers."""

import pytest
from rest_framework.test import APIClient

from reviewapp.models import Annotation
from tests.app.conftest import PASSWORD
from tests.helpers.reviews import answer, answer_all, review_set_with_items

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("media_root")]


@pytest.fixture
def api_bob(bob) -> APIClient:
    client = APIClient()
    client.force_authenticate(bob)
    return client


@pytest.fixture
def api_alice(alice) -> APIClient:
    client = APIClient()
    client.force_authenticate(alice)
    return client


def results(response) -> list[dict]:
    assert response.status_code == 200, response.content
    return response.json()["results"]


def test_the_api_needs_credentials():
    response = APIClient().get("/api/review-sets/")
    assert response.status_code == 401
    assert response["WWW-Authenticate"] == "Token"


@pytest.mark.parametrize("endpoint", ["studies", "cases", "sweeps", "dimensions"])
def test_reviewers_cannot_reach_admin_endpoints(api_bob, endpoint):
    assert api_bob.get(f"/api/{endpoint}/").status_code == 403


def test_a_reviewer_sees_only_the_sets_assigned_to_them(api_bob, bob, charlie):
    mine = review_set_with_items(readers=[bob], dimensions=1, images_per_dimension=2)
    review_set_with_items(readers=[charlie], dimensions=1, images_per_dimension=2)
    answer(mine.items.first(), bob)

    sets = results(api_bob.get("/api/review-sets/"))

    assert [s["id"] for s in sets] == [mine.pk]
    assert sets[0]["my_progress"]["answered"] == 1
    assert sets[0]["my_progress"]["total"] == 2


def test_a_reviewer_gets_their_items_blinded_and_in_their_own_order(api_bob, bob, charlie):
    review_set = review_set_with_items(readers=[bob], dimensions=2, images_per_dimension=3, blinded=True)
    review_set_with_items(readers=[charlie], dimensions=1, images_per_dimension=1)

    items = results(api_bob.get("/api/items/"))

    assert [i["position"] for i in items] == [1, 2, 3, 4, 5, 6]
    assert all(i["details"] is None for i in items)
    assert all(i["review_set"] == review_set.pk for i in items)
    assert "/reviews/" in items[0]["images"]["perturbed"]


def test_admins_see_item_details(api_alice, bob):
    review_set = review_set_with_items(readers=[bob], dimensions=1, images_per_dimension=1, blinded=True)
    items = results(api_alice.get(f"/api/items/?review_set={review_set.pk}"))
    assert items[0]["details"]["dimension"] == 1980


def test_a_reviewer_sees_only_their_own_annotations(api_bob, bob, charlie):
    review_set = review_set_with_items(readers=[bob, charlie], dimensions=1, images_per_dimension=2)
    answer_all(review_set, bob)
    answer_all(review_set, charlie)

    annotations = results(api_bob.get("/api/annotations/"))

    assert {a["reader"] for a in annotations} == {"bob"}
    assert len(annotations) == 2
    charlies = Annotation.objects.filter(reader=charlie).first()
    assert api_bob.get(f"/api/annotations/{charlies.pk}/").status_code == 404
    assert (
        api_bob.patch(f"/api/annotations/{charlies.pk}/", {"comment": "x"}, format="json").status_code == 404
    )


def test_admins_read_every_annotation_and_filter_by_reader(api_alice, bob, charlie):
    review_set = review_set_with_items(readers=[bob, charlie], dimensions=1, images_per_dimension=2)
    answer_all(review_set, bob)
    answer_all(review_set, charlie)

    assert len(results(api_alice.get("/api/annotations/"))) == 4
    assert {a["reader"] for a in results(api_alice.get("/api/annotations/?reader=charlie"))} == {"charlie"}


def test_admins_do_not_write_answers_on_sets_they_do_not_read(api_alice, bob):
    review_set = review_set_with_items(readers=[bob], dimensions=1, images_per_dimension=1)
    response = api_alice.post("/api/annotations/", {"item": review_set.items.get().pk}, format="json")
    assert response.status_code == 400
    assert "not assigned" in str(response.json())


def test_reviewers_cannot_export_or_see_results(api_bob, bob):
    review_set = review_set_with_items(readers=[bob], dimensions=1, images_per_dimension=1)
    assert api_bob.get(f"/api/review-sets/{review_set.pk}/export/").status_code == 403
    assert api_bob.get(f"/api/review-sets/{review_set.pk}/results/").status_code == 403


def test_a_token_from_the_token_endpoint_authenticates(bob):
    review_set = review_set_with_items(readers=[bob], dimensions=1, images_per_dimension=1)
    client = APIClient()
    token = client.post("/api/auth/token/", {"username": "bob", "password": PASSWORD}).json()["token"]

    client.credentials(HTTP_AUTHORIZATION=f"Token {token}")

    assert [s["id"] for s in results(client.get("/api/review-sets/"))] == [review_set.pk]


def test_the_token_endpoint_rejects_a_wrong_password(bob):
    assert APIClient().post("/api/auth/token/", {"username": "bob", "password": "nope"}).status_code == 400


def test_session_log_in_works_for_the_api(bob_client, bob):
    review_set_with_items(readers=[bob], dimensions=1, images_per_dimension=1)
    assert bob_client.get("/api/review-sets/").status_code == 200


def test_every_api_view_but_the_token_log_in_needs_an_authenticated_user():
    from rest_framework.permissions import AllowAny

    from tests.app.test_login_required import authenticates_itself, named_views

    api_views = [(name, view) for name, view in named_views() if authenticates_itself(view)]
    assert len(api_views) > 10
    for name, view in api_views:
        permissions = view.initkwargs.get("permission_classes", view.cls.permission_classes)
        if name == "api-token":
            continue
        assert permissions and AllowAny not in permissions, name
