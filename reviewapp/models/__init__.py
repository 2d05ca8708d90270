"""Models of the review app, one module per area; import them from here."""

from reviewapp.models.audit import AnswerVersion, AuditAction, AuditEvent
from reviewapp.models.jobs import Job, JobLease
from reviewapp.models.lab import LabRun
from reviewapp.models.reviews import (
    Annotation,
    ChestRegion,
    FactorAnnotation,
    FactorRelevance,
    Finding,
    ItemFlag,
    PneumoniaRelevance,
    ReviewAssignment,
    ReviewItem,
    ReviewSet,
)
from reviewapp.models.studies import Case, Projection, Study
from reviewapp.models.sweeps import Counterfactual, DimensionEffect, Sweep, SweepCase, SweepUnit

__all__ = [
    "Annotation",
    "AnswerVersion",
    "AuditAction",
    "AuditEvent",
    "Case",
    "ChestRegion",
    "Counterfactual",
    "DimensionEffect",
    "FactorAnnotation",
    "FactorRelevance",
    "Finding",
    "ItemFlag",
    "Job",
    "JobLease",
    "LabRun",
    "PneumoniaRelevance",
    "Projection",
    "ReviewAssignment",
    "ReviewItem",
    "ReviewSet",
    "Study",
    "Sweep",
    "SweepCase",
    "SweepUnit",
]
