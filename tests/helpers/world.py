"""A small installation with something behind every URL: a study with cases, a finished sweep, review sets of
two reviewers (one finalised), their answers and factor names, a lab run and a job; and the project's URL
patterns, enumerated from the resolver, turned into URLs that point at those objects."""

from __future__ import annotations

import io
import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np
from django.core.files.base import ContentFile
from django.urls import URLPattern, URLResolver, get_resolver
from django.utils import timezone
from PIL import Image

from reviewapp.models import Job, ReviewAssignment, ReviewItem, ReviewSet
from tests.factories import AnnotationFactory, FactorAnnotationFactory, LabRunFactory
from tests.helpers.reviews import review_set_with_items


@dataclass
class World:
    alice: Any
    bob: Any
    charlie: Any
    bob_set: ReviewSet  # assigned to bob, open
    bob_done: ReviewSet  # assigned to bob, finalised: bob may explore its cases
    charlie_set: ReviewSet  # assigned to charlie
    bob_item: ReviewItem
    bob_annotation: Any
    charlie_annotation: Any
    bob_factor: Any
    charlie_factor: Any
    lab_run: Any
    job: Job

    @property
    def study(self):
        return self.bob_set.study

    @property
    def sweep(self):
        return self.bob_set.sweep

    @property
    def explore_case(self):
        return self.bob_done.items.order_by("position").first().case

    def values(self) -> dict[str, str]:
        """Placeholder -> value of the URL patterns, each naming an object of the world (bob's where the
        object belongs to a reader)."""
        dimension = self.sweep.dimension_effects.order_by("rank").first()
        return {
            "study": str(self.study.pk),
            "case": str(self.bob_item.case.pk),
            "sweep": str(self.sweep.pk),
            "dimension": str(dimension.pk),
            "dim": str(dimension.dim),
            "lab_run": str(self.lab_run.pk),
            "review_set": str(self.bob_set.pk),
            "item": str(self.bob_item.pk),
            "annotation": str(self.bob_annotation.pk),
            "factor_annotation": str(self.bob_factor.pk),
            "job": str(self.job.pk),
            "set_pk": str(self.bob_set.pk),
            "position": "1",
            "number": "1",
            "kind": "original",
            "case_pk": str(self.explore_case.pk),
            "reader_pk": str(self.bob.pk),
            "path": self.bob_item.case.image.name,
        }


def build_world(alice, bob, charlie) -> World:
    bob_set = review_set_with_items(readers=[bob], dimensions=1, images_per_dimension=2)
    bob_done = review_set_with_items(readers=[bob], dimensions=1, images_per_dimension=1)
    ReviewAssignment.objects.filter(review_set=bob_done, reader=bob).update(finalised_at=timezone.now())
    charlie_set = review_set_with_items(readers=[charlie], dimensions=1, images_per_dimension=2)
    bob_item = bob_set.items.order_by("position").first()
    # A 16-bit source film behind each of bob's items (his reading order may be shuffled), so the
    # source-pixels view has something to serve.
    film = io.BytesIO()
    Image.fromarray(np.arange(64 * 64, dtype=np.uint16).reshape(64, 64) * 16).save(film, format="PNG")
    for item in bob_set.items.all():
        item.case.source_file.save("film.png", ContentFile(film.getvalue()), save=True)
    charlie_item = charlie_set.items.order_by("position").first()
    bob_dimension = bob_item.counterfactual.dimension
    charlie_dimension = charlie_item.counterfactual.dimension
    return World(
        alice=alice,
        bob=bob,
        charlie=charlie,
        bob_set=bob_set,
        bob_done=bob_done,
        charlie_set=charlie_set,
        bob_item=bob_item,
        bob_annotation=AnnotationFactory(item=bob_item, reader=bob, is_draft=True),
        charlie_annotation=AnnotationFactory(item=charlie_item, reader=charlie, is_draft=True),
        bob_factor=FactorAnnotationFactory(review_set=bob_set, dimension=bob_dimension, reader=bob),
        charlie_factor=FactorAnnotationFactory(
            review_set=charlie_set, dimension=charlie_dimension, reader=charlie
        ),
        lab_run=LabRunFactory(study=bob_set.study),
        job=Job.objects.create(kind="sweep", created_by=alice),
    )


# --------------------------------------------------------------------------------------------------
# URL patterns


@dataclass(frozen=True)
class Route:
    """One URL pattern: its full route (prefixes joined, as Django prints them) and its qualified name."""

    route: str
    name: str

    @property
    def is_admin_site(self) -> bool:
        return self.route.startswith("admin/")

    @property
    def is_api(self) -> bool:
        return self.route.startswith("api/")

    @property
    def key(self) -> str:
        """The route without DRF's format suffix (``.json``): a suffixed route behaves as its base route."""
        return re.sub(r"\\\.\(\?P<format>[^)]*\)/\?\$$", "/$", self.route).replace(
            "<drf_format_suffix:format>", ""
        )

    def url(self, values: dict[str, str]) -> str:
        """The route with its placeholders filled from ``values`` (API ``pk`` from the resource's name), a
        format suffix as ``.json``; a placeholder without a value gets "1" (or the first alternative of a
        regex group)."""
        resource = re.match(r"api/\^([a-z-]+)", self.route)
        resource_key = API_RESOURCES.get(resource.group(1), "") if resource else ""

        def value(name: str, pattern: str = "") -> str:
            if name == "format":
                return "json"
            if name == "pk" and resource_key:
                return values.get(resource_key, "1")
            if name == "pk" and self.name in PK_OF:
                return values[PK_OF[self.name]]
            if name in values and not self.is_admin_site:
                return values[name]
            alternatives = re.fullmatch(r"\(?([\w|]+)\)?", pattern)
            return alternatives.group(1).split("|")[0] if alternatives and "|" in pattern else "1"

        text = re.sub(r"\(\?P<(\w+)>([^)]*)\)", lambda m: value(m.group(1), m.group(2)), self.route)
        text = re.sub(r"<(?:\w+:)?(\w+)>", lambda m: value(m.group(1)), text)
        text = text.replace("^", "").replace("$", "").replace("\\.", ".").replace("/?", "/")
        if self.name == "api-root" and "format" in self.route:
            text = "api/.json"
        return "/" + text


#: Which object the ``pk`` of an API resource names.
API_RESOURCES = {
    "studies": "study",
    "cases": "case",
    "sweeps": "sweep",
    "dimensions": "dimension",
    "lab-runs": "lab_run",
    "review-sets": "review_set",
    "items": "item",
    "annotations": "annotation",
    "factor-annotations": "factor_annotation",
}

#: Which object a non-API view's ``pk`` names.
PK_OF = {
    "job-progress": "job",
    "review-set-results": "review_set",
    "export-reviews": "review_set",
    "export-agreement": "review_set",
    "factor-catalogue": "study",
    "export-factors": "study",
    "export-dimensions": "sweep",
    "study": "study",
    "study-case-upload": "study",
    "study-retry-projections": "study",
    "study-estimate-ranges": "study",
    "sweep-new": "study",
    "lab": "study",
    "lab-compare": "study",
    "lab-run": "lab_run",
    "lab-run-cancel": "lab_run",
    "lab-run-add": "lab_run",
    "sweep": "sweep",
    "sweep-cancel": "sweep",
    "sweep-dimension": "sweep",
    "sweep-dimension-render": "sweep",
    "review-set-new": "sweep",
    "curation-review-set": "review_set",
    "review-set-assign": "review_set",
    "review-set-unassign": "review_set",
}


def routes(patterns=None, prefix: str = "", namespace: str = "") -> Iterator[Route]:
    """Every URL pattern of the project (admin site and API included), from the resolver."""
    for entry in patterns if patterns is not None else get_resolver().url_patterns:
        if isinstance(entry, URLResolver):
            inner = f"{namespace}{entry.namespace}:" if entry.namespace else namespace
            yield from routes(entry.url_patterns, prefix + str(entry.pattern), inner)
        elif isinstance(entry, URLPattern):
            yield Route(prefix + str(entry.pattern), f"{namespace}{entry.name or entry.lookup_str}")
