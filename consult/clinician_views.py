"""Clinician workspace pages: server-rendered, every piece of patient text escaped by the templates.

Review actions are plain form posts (they work without JavaScript); static/consult/review.js only adds
"select text in a message to fill the add-mention form" and the print button.
"""
from __future__ import annotations

import datetime as dt
import functools
import json
import uuid

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.views.decorators.http import require_POST, require_safe

from consult import access, fhir
from consult.models import Consultation, Urgency
from consult.extraction import CORE_TYPES
from consult.selectors.annotations import text_segments
from consult.selectors.case import CaseFilters, case_get, chief_complaint, consultation_list, patient_details
from consult.services.review import (
    AGE_MAX_YEARS,
    NOTE_MAX_CHARS,
    SEXES,
    URGENCY_REASON_MAX_CHARS,
    ReviewError,
    clinician_note_save,
    clinician_urgency_save,
    consultation_review_mark,
    context_review_apply,
    entity_add,
    entity_review_apply,
    patient_details_save,
)
from consult.vocabulary import ASSERTIONS, REVIEW_TYPES

CONTENT_SECURITY_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
    "base-uri 'none'; form-action 'self'; frame-ancestors 'none'; object-src 'none'"
)
TYPE_LABELS = {"SYMPTOM": "Symptom", "DISEASE": "Condition", "DRUG": "Medicine", "ANATOMY": "Body part",
               "DURATION": "Duration", "SEVERITY": "Severity"}


def clinician_required(view):
    @login_required
    @functools.wraps(view)
    def wrapper(request: HttpRequest, *args, **kwargs) -> HttpResponse:
        if not access.user_is_clinician(user=request.user):
            raise PermissionDenied
        response = view(request, *args, **kwargs)
        response["Content-Security-Policy"] = CONTENT_SECURITY_POLICY
        response["Cache-Control"] = "no-store"  # patient data: never kept by browsers or proxies
        return response

    return wrapper


def _date(value: str | None) -> dt.date | None:
    try:
        return dt.date.fromisoformat(value) if value else None
    except ValueError:
        return None


def _filters_from(request: HttpRequest) -> CaseFilters:
    reviewed = {"yes": True, "no": False}.get(request.GET.get("reviewed", ""))
    status = request.GET.get("status") if request.GET.get("status") in Consultation.Status.values else None
    urgency = request.GET.get("urgency") if request.GET.get("urgency") in Urgency.values else None
    search = " ".join(request.GET.get("q", "").split())[:100] or None
    return CaseFilters(status=status, urgency=urgency, reviewed=reviewed,
                       created_from=_date(request.GET.get("from")), created_to=_date(request.GET.get("to")),
                       search=search)


@require_safe
@clinician_required
def dashboard(request: HttpRequest) -> HttpResponse:
    filters = _filters_from(request)
    consultations = consultation_list(filters=filters).prefetch_related("record_items", "messages")
    page = Paginator(consultations, 50).get_page(request.GET.get("page"))
    rows = [{"consultation": c, "chief_complaint": chief_complaint(consultation=c),
             "patient": patient_details(consultation=c),
             # A missing reverse one-to-one raises an AttributeError subclass, which getattr turns into None.
             "clinician_urgency": getattr(c, "clinician_urgency", None)} for c in page]
    query = request.GET.copy()
    query.pop("page", None)
    return render(request, "clinician/dashboard.html", {
        "page": page, "rows": rows, "filters": filters, "query": query.urlencode(),
        "statuses": Consultation.Status.choices, "urgencies": Urgency.choices,
        "params": request.GET,
    })


def _case_context(consultation: Consultation) -> dict:
    view = case_get(consultation=consultation)
    messages_view = [
        {"message": message, "annotations": annotations,
         "segments": text_segments(text=message.text, annotations=annotations)}
        for message, annotations in view.messages
    ]
    return {"case": view, "consultation": consultation, "messages_view": messages_view,
            "review_types": [(t, TYPE_LABELS.get(t, t)) for t in REVIEW_TYPES],
            "assertions": ASSERTIONS, "reviewed": getattr(consultation, "review", None),
            "core_types": CORE_TYPES, "note_max_chars": NOTE_MAX_CHARS,
            "urgencies": Urgency.choices, "urgency_reason_max_chars": URGENCY_REASON_MAX_CHARS,
            "sexes": SEXES, "age_max": AGE_MAX_YEARS}


@require_safe
@clinician_required
def case_detail(request: HttpRequest, consultation_id: uuid.UUID) -> HttpResponse:
    consultation = get_object_or_404(Consultation.objects.select_related("review"), pk=consultation_id)
    return render(request, "clinician/case.html", _case_context(consultation))


def _int_or_none(value: str | None) -> int | None:
    try:
        return int(value) if value not in (None, "") else None
    except ValueError:
        return None


@require_POST
@clinician_required
def case_review(request: HttpRequest, consultation_id: uuid.UUID) -> HttpResponse:
    consultation = get_object_or_404(Consultation, pk=consultation_id)
    data = request.POST
    action = data.get("action", "")
    url = reverse("clinician-case", kwargs={"consultation_id": consultation.id})
    try:
        if action in {"context_accept", "context_edit"}:
            changes = {}
            if action == "context_edit":
                changes = {"assertion": data.get("assertion") or None,
                           "codes_keep": data.getlist("codes_keep"),
                           "code_term": data.get("code_term") or None}
            annotation = context_review_apply(
                consultation=consultation, actor=request.user, action=action,
                entity_id=_int_or_none(data.get("entity_id")), review_id=_int_or_none(data.get("review_id")),
                **changes,
            )
        elif action == "add":
            annotation = entity_add(
                consultation=consultation, actor=request.user, message_id=_int_or_none(data.get("message_id")),
                type=data.get("type", ""), start=data.get("start"), end=data.get("end"),
                assertion=data.get("assertion") or None,
            )
        else:
            changes = {}
            if action == "correct":
                changes = {"type": data.get("type") or None, "start": _int_or_none(data.get("start")),
                           "end": _int_or_none(data.get("end")), "assertion": data.get("assertion") or None}
            annotation = entity_review_apply(
                consultation=consultation, actor=request.user, action=action,
                entity_id=_int_or_none(data.get("entity_id")), review_id=_int_or_none(data.get("review_id")),
                **changes,
            )
    except ReviewError as error:
        messages.error(request, str(error))
        return redirect(url)
    said = {"context_accept": "proposed values accepted", "context_edit": "values edited"}.get(action,
                                                                                               annotation.status)
    messages.success(request, f"{annotation.text} ({annotation.type}): {said}.")
    return redirect(f"{url}#ann-{annotation.key}")


def _case_write(request: HttpRequest, consultation_id: uuid.UUID, *, write, done: str, anchor: str) -> HttpResponse:
    """Run one review-service write on the case (`write(consultation)`), show its ReviewError or `done`, and go
    back to the case page at `anchor`."""
    consultation = get_object_or_404(Consultation, pk=consultation_id)
    try:
        write(consultation)
    except ReviewError as error:
        messages.error(request, str(error))
    else:
        messages.success(request, done)
    return redirect(reverse("clinician-case", kwargs={"consultation_id": consultation.id}) + anchor)


@require_POST
@clinician_required
def case_note(request: HttpRequest, consultation_id: uuid.UUID) -> HttpResponse:
    return _case_write(request, consultation_id, done="Note saved.", anchor="#note-title", write=lambda c: (
        clinician_note_save(consultation=c, actor=request.user, text=request.POST.get("note", ""))))


@require_POST
@clinician_required
def case_urgency(request: HttpRequest, consultation_id: uuid.UUID) -> HttpResponse:
    return _case_write(
        request, consultation_id, done="Urgency set; the patient's page shows it with your reason.",
        anchor="#urgency-title", write=lambda c: clinician_urgency_save(
            consultation=c, actor=request.user, urgency=request.POST.get("urgency", ""),
            reason=request.POST.get("reason", "")))


@require_POST
@clinician_required
def case_patient(request: HttpRequest, consultation_id: uuid.UUID) -> HttpResponse:
    return _case_write(request, consultation_id, done="Age and sex saved.", anchor="#patient-title",
                       write=lambda c: patient_details_save(
                           consultation=c, actor=request.user, age=request.POST.get("age", "").strip(),
                           sex=request.POST.get("sex", "")))


@require_POST
@clinician_required
def case_reviewed(request: HttpRequest, consultation_id: uuid.UUID) -> HttpResponse:
    consultation = get_object_or_404(Consultation, pk=consultation_id)
    reviewed = request.POST.get("reviewed") == "1"
    consultation_review_mark(consultation=consultation, actor=request.user, reviewed=reviewed)
    messages.success(request, "Marked as reviewed." if reviewed else "Review mark removed.")
    return redirect("clinician-case", consultation_id=consultation.id)


@require_safe
@clinician_required
def case_summary(request: HttpRequest, consultation_id: uuid.UUID) -> HttpResponse:
    consultation = get_object_or_404(Consultation.objects.select_related("review"), pk=consultation_id)
    return render(request, "clinician/summary.html", {**_case_context(consultation), "codes_open": True})


@require_safe
@clinician_required
def case_fhir(request: HttpRequest, consultation_id: uuid.UUID) -> HttpResponse:
    consultation = get_object_or_404(Consultation.objects.select_related("review"), pk=consultation_id)
    bundle = fhir.consultation_fhir_bundle(case=case_get(consultation=consultation))
    response = HttpResponse(json.dumps(bundle, indent=2, ensure_ascii=False),
                            content_type="application/fhir+json; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="consultation-{consultation.id}.fhir.json"'
    return response
