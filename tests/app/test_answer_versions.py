"""No answer is lost or overwritten unseen: partial saves, the version check of two tabs, the history of
submitted versions."""

import pytest
from django.urls import reverse
from rest_framework.test import APIClient

from reviewapp.models import Annotation, AnswerVersion
from reviewapp.services.annotations import Answers
from tests.factories import AnnotationFactory
from tests.helpers.reviews import review_set_with_items

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("media_root")]

COMPLETE = {"q1_meaningful": "yes", "clinical_description": "hazy right base", "q2_pneumonia": "subtle"}


@pytest.fixture
def api_bob(bob) -> APIClient:
    client = APIClient()
    client.force_authenticate(bob)
    return client


def one_item_set(reader):
    return review_set_with_items(readers=[reader], dimensions=1, images_per_dimension=1)


def draft_url(review_set):
    return reverse("review-item-autosave", args=[review_set.pk, 1])


def read_url(review_set):
    return reverse("review-item", args=[review_set.pk, 1])


# --- partial saves --------------------------------------------------------------------------------


def test_an_autosave_changes_only_the_answers_it_carries(bob, bob_client):
    review_set = one_item_set(bob)
    bob_client.post(
        draft_url(review_set), {"q2_pneumonia": "possible", "comment": "look again", "confidence": "4"}
    )

    response = bob_client.post(draft_url(review_set), {"comment": "looked again"})

    assert response.status_code == 200
    annotation = Annotation.objects.get()
    assert (annotation.q2_pneumonia, annotation.comment, annotation.confidence) == (
        "possible",
        "looked again",
        4,
    )


def test_an_api_post_with_some_fields_keeps_the_others_and_the_submitted_state(api_bob, bob):
    review_set = one_item_set(bob)
    item = review_set.items.get()
    api_bob.post(
        "/api/annotations/",
        {"item": item.pk, "q1_meaningful": True, "clinical_description": "hazy base", "q2_pneumonia": "yes",
         "confidence": 3, "submit": True},
        format="json",
    )  # fmt: skip

    response = api_bob.post("/api/annotations/", {"item": item.pk, "comment": "second look"}, format="json")

    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "submitted"
    assert (body["clinical_description"], body["q2_pneumonia"], body["confidence"]) == ("hazy base", "yes", 3)
    assert body["comment"] == "second look"


def test_an_api_put_replaces_every_answer_but_cannot_unsubmit(api_bob, bob):
    review_set = one_item_set(bob)
    item = review_set.items.get()
    created = api_bob.post(
        "/api/annotations/",
        {"item": item.pk, "q1_meaningful": False, "q2_pneumonia": "no", "comment": "flat", "submit": True},
        format="json",
    ).json()

    incomplete = api_bob.put(f"/api/annotations/{created['id']}/", {"item": item.pk}, format="json")
    replaced = api_bob.put(
        f"/api/annotations/{created['id']}/",
        {"item": item.pk, "q1_meaningful": False, "q2_pneumonia": "subtle"},
        format="json",
    )

    assert incomplete.status_code == 400
    assert replaced.status_code == 200
    assert (replaced.json()["comment"], replaced.json()["status"]) == ("", "submitted")


# --- two tabs -------------------------------------------------------------------------------------


def test_a_save_from_an_older_page_is_refused_with_409_and_the_newer_answer_kept(bob, bob_client):
    review_set = one_item_set(bob)
    first_tab = bob_client.post(draft_url(review_set), {"comment": "first tab", "version": "0"})
    assert first_tab.json()["version"] == 1

    second_tab = bob_client.post(draft_url(review_set), {"comment": "second tab", "version": "0"})

    assert second_tab.status_code == 409
    body = second_tab.json()
    assert body["conflict"] is True
    assert body["version"] == 1
    assert "another tab or window" in body["errors"]["__all__"][0]
    assert "Nothing was saved here" in body["errors"]["__all__"][0]
    assert Annotation.objects.get().comment == "first tab"


def test_saves_that_name_the_current_version_go_through_one_after_another(bob, bob_client):
    review_set = one_item_set(bob)
    version = 0
    for text in ("one", "two", "three"):
        response = bob_client.post(draft_url(review_set), {"comment": text, "version": str(version)})
        assert response.status_code == 200
        version = response.json()["version"]
    assert (Annotation.objects.get().comment, version) == ("three", 3)


def test_an_older_page_that_changes_nothing_is_not_a_conflict(bob, bob_client):
    review_set = one_item_set(bob)
    bob_client.post(draft_url(review_set), {"comment": "same", "version": "0"})
    response = bob_client.post(draft_url(review_set), {"comment": "same", "seconds": "5", "version": "0"})
    assert response.status_code == 200
    assert Annotation.objects.get().time_spent_seconds == 5


def test_submitting_from_an_older_page_shows_the_newer_answer_and_why(bob, bob_client):
    review_set = one_item_set(bob)
    bob_client.post(draft_url(review_set), {**COMPLETE, "comment": "from the other tab", "version": "0"})

    response = bob_client.post(read_url(review_set), {**COMPLETE, "comment": "from this tab", "version": "0"})

    assert response.status_code == 409
    text = response.content.decode()
    assert "changed in another tab or window" in text
    assert "from the other tab</textarea>" in text
    assert 'name="version" value="1"' in text
    annotation = Annotation.objects.get()
    assert (annotation.comment, annotation.is_draft) == ("from the other tab", True)


def test_the_reading_screen_holds_the_version_it_shows(bob, bob_client):
    review_set = one_item_set(bob)
    assert 'name="version" value="0"' in bob_client.get(read_url(review_set)).content.decode()
    bob_client.post(draft_url(review_set), {"comment": "x"})
    bob_client.post(draft_url(review_set), {"comment": "y"})
    assert 'name="version" value="2"' in bob_client.get(read_url(review_set)).content.decode()


def test_a_tab_that_creates_the_answer_second_gets_a_conflict(bob, bob_client, monkeypatch):
    review_set = one_item_set(bob)
    item = review_set.items.get()
    read_answers = Answers.of

    def other_tab_saves_first(annotation):
        # The other tab's answer is stored after this save looked for one and before it writes its own.
        if not Annotation.objects.exists():
            AnnotationFactory(item=item, reader=bob, is_draft=True, comment="other tab", version=1)
        return read_answers(annotation)

    monkeypatch.setattr(Answers, "of", staticmethod(other_tab_saves_first))
    response = bob_client.post(draft_url(review_set), {"comment": "this tab", "version": "0"})

    # (The other tab's row is rolled back with this save here, where both share one connection.)
    assert response.status_code == 409
    assert response.json()["version"] == 1
    assert "another tab or window" in response.json()["errors"]["__all__"][0]


def test_the_api_checks_the_version_it_is_sent(api_bob, bob):
    review_set = one_item_set(bob)
    item = review_set.items.get()
    created = api_bob.post("/api/annotations/", {"item": item.pk, "comment": "a"}, format="json").json()
    api_bob.patch(
        f"/api/annotations/{created['id']}/", {"comment": "b", "version": created["version"]}, format="json"
    )

    stale = api_bob.patch(
        f"/api/annotations/{created['id']}/", {"comment": "c", "version": created["version"]}, format="json"
    )

    assert stale.status_code == 409
    assert stale.json()["version"] == created["version"] + 1
    assert "another tab or window" in stale.json()["detail"]
    assert Annotation.objects.get().comment == "b"


# --- history --------------------------------------------------------------------------------------


def test_every_submitted_version_is_kept(bob, bob_client):
    review_set = one_item_set(bob)
    bob_client.post(draft_url(review_set), {"comment": "draft only"})
    bob_client.post(read_url(review_set), COMPLETE)
    bob_client.post(draft_url(review_set), {"clinical_description": "hazy right base, more on the left"})
    bob_client.post(read_url(review_set), {**COMPLETE, "q2_pneumonia": "yes"})

    versions = list(AnswerVersion.objects.filter(annotation=Annotation.objects.get()).order_by("version"))

    assert [v.submitted for v in versions] == [True, False, True]
    assert [v.answers["clinical_description"] for v in versions] == [
        "hazy right base",
        "hazy right base, more on the left",
        "hazy right base",
    ]
    assert [v.answers["q2_pneumonia"] for v in versions] == ["subtle", "subtle", "yes"]
    assert versions[0].answers["comment"] == "draft only"
    assert {v.reader_name for v in versions} == {"bob"}
    assert [v.version for v in versions] == sorted({v.version for v in versions})


def test_a_refused_save_writes_no_version(bob, bob_client):
    review_set = one_item_set(bob)
    bob_client.post(read_url(review_set), COMPLETE)
    bob_client.post(draft_url(review_set), {"clinical_description": ""})
    bob_client.post(draft_url(review_set), {"comment": "stale", "version": "0"})
    assert AnswerVersion.objects.count() == 1


def test_history_rows_cannot_be_changed_or_deleted_through_the_model(bob, bob_client):
    review_set = one_item_set(bob)
    bob_client.post(read_url(review_set), COMPLETE)
    version = AnswerVersion.objects.get()
    version.answers = {}
    with pytest.raises(PermissionError):
        version.save()
    with pytest.raises(PermissionError):
        version.delete()


def test_the_history_is_shown_read_only_in_the_admin(alice_client, bob, bob_client):
    review_set = one_item_set(bob)
    bob_client.post(read_url(review_set), COMPLETE)
    version = AnswerVersion.objects.get()

    listing = alice_client.get(reverse("admin:reviewapp_answerversion_changelist"))
    page = alice_client.get(reverse("admin:reviewapp_answerversion_change", args=[version.pk]))
    change = alice_client.post(reverse("admin:reviewapp_answerversion_change", args=[version.pk]), {})
    delete = alice_client.get(reverse("admin:reviewapp_answerversion_delete", args=[version.pk]))
    add = alice_client.get(reverse("admin:reviewapp_answerversion_add"))

    assert listing.status_code == 200 and "bob" in listing.content.decode()
    assert page.status_code == 200 and "hazy right base" in page.content.decode()
    assert change.status_code == 403
    assert delete.status_code == 403
    assert add.status_code == 403
    assert AnswerVersion.objects.get().answers["clinical_description"] == "hazy right base"
