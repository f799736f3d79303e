"""Who may do what, named once.

Each permission is a `Permission`: the roles that may use it and, where it depends on the
record, the check on that record. Routes declare one (`@allow(can_log_interactions)`), services
check the same one (`require(can_resolve_flags, actor, flag)`), and navigation and templates
show a link only when the permission of the route it leads to lets the user through
(`may("review.queue")`). A route that declares nothing refuses everyone.

What a user may *see* is the scope of their organisation (DOMAIN.md, "Every role acts within its
organisation"): the partnerships the organisations they act for are a party to, with those
partnerships' records, and the interactions those organisations logged outside any partnership.
A record outside the scope answers 404, as an unknown id does.
"""

from collections.abc import Callable
from dataclasses import dataclass, field

from flask import abort, current_app, has_request_context, request
from flask_login import current_user
from sqlalchemy import false, literal, or_, select, true, union

from .errors import NotAllowed
from .extensions import db

ALL_ROLES = frozenset({"advocate", "compliance", "auditor", "partner", "admin"})
# Roles that act for organisations and read their compliance records (admins read none).
PARTY_ROLES = frozenset({"advocate", "compliance", "auditor", "partner"})
# Roles that also see voided records (with their void reason).
VOID_READERS = frozenset({"compliance", "auditor"})


@dataclass(frozen=True)
class Permission:
    """A named permission: who may, and (optionally) on which records."""

    name: str
    roles: frozenset
    refusal: str = "Your role may not do this."
    record_check: Callable | None = field(default=None, compare=False)

    def __call__(self, user, record=None) -> bool:
        if not getattr(user, "is_authenticated", False) or user.role not in self.roles:
            return False
        return record is None or self.record_check is None or self.record_check(user, record)

    def __str__(self) -> str:
        return self.name


def permission(name: str, *roles: str, refusal: str | None = None,
               record_check: Callable | None = None) -> Permission:
    unknown = set(roles) - ALL_ROLES
    if unknown:
        raise ValueError(f"unknown roles: {sorted(unknown)}")
    return Permission(name, frozenset(roles), refusal or "Your role may not do this.",
                      record_check)


EVERYONE = Permission("everyone", frozenset({"*"}))


def require(perm: Permission, actor, record=None) -> None:
    """Raise NotAllowed unless the permission lets the actor through (on the record)."""
    if not perm(actor, record):
        raise NotAllowed(perm.refusal)


# --- which organisations a user acts for ---------------------------------------------------


def acting_organisation_ids(user) -> tuple[int, ...] | None:
    """The organisations whose records the user may read: their own and, for an auditor, the
    organisations they were granted. None: the whole installation (a compliance officer or
    auditor created without an organisation acts for it, as in the first roadmap)."""
    if not getattr(user, "is_authenticated", False) or user.role not in PARTY_ROLES:
        return ()
    if user.organisation_id is None:
        return None if user.role in VOID_READERS else ()
    if user.role != "auditor":
        return (user.organisation_id,)
    # An auditor's grants are read once per request (every scope of the request asks).
    cache = request.__dict__.setdefault("_acting_organisations", {}) \
        if has_request_context() else {}
    if user.id not in cache:
        from .auth.models import AuditorGrant

        granted = db.session.scalars(
            select(AuditorGrant.organisation_id)
            .where(AuditorGrant.user_id == user.id, AuditorGrant.voided_at.is_(None))).all()
        cache[user.id] = (user.organisation_id, *sorted(set(granted) - {user.organisation_id}))
    return cache[user.id]


def _acting_in_sql(user):
    """acting_organisation_ids as SQL reads it: None (the whole installation), () (none), or what
    `column.in_()` takes; an auditor's grants as a subquery, so a scope costs no statement of
    its own."""
    if user.role != "auditor" or user.organisation_id is None:
        return acting_organisation_ids(user)
    from .auth.models import AuditorGrant

    return union(select(literal(user.organisation_id)),
                 select(AuditorGrant.organisation_id)
                 .where(AuditorGrant.user_id == user.id, AuditorGrant.voided_at.is_(None)))


def acts_for(user, organisation_id: int | None) -> bool:
    organisations = acting_organisation_ids(user)
    return organisations is None or organisation_id in organisations


def own_organisation(user, organisation_id: int | None) -> bool:
    """The organisation is the user's own (a compliance officer reports, reviews and edits the
    methodology of their own organisation only)."""
    return organisation_id is not None and (
        user.organisation_id == organisation_id
        or (user.organisation_id is None and user.role in VOID_READERS))


def is_party(user, partnership) -> bool:
    """The user's own organisation is a party to the partnership (sponsor, patient group or
    attached organisation)."""
    if user.organisation_id is None:
        return user.role in VOID_READERS
    return user.organisation_id in partnership.organisation_ids


# --- the named permissions -----------------------------------------------------------------

can_use_account = permission("use your account", *ALL_ROLES)
can_read_records = permission(
    "read partnerships and interactions", "advocate", "compliance", "auditor", "partner",
    refusal="Administrators read no compliance records.")
can_edit_records = permission(
    "log and edit interactions, partnerships and support", "advocate", "compliance",
    refusal="Only advocates and compliance officers record interactions, partnerships and "
            "support.")
can_edit_partnership = permission(
    "edit a partnership, its support and its attachments", "advocate", "compliance",
    refusal="You can change only partnerships your organisation is a party of.",
    record_check=is_party)
can_read_organisations = permission("read organisations", "advocate", "compliance", "auditor",
                                    "admin")
can_add_organisations = permission(
    "add organisations", "advocate", "compliance", "admin",
    refusal="Only advocates, compliance officers and administrators add organisations.")
can_edit_organisations = permission(
    "edit organisations", "compliance", "admin",
    refusal="Only administrators, and compliance officers of the organisation or of the one "
            "that added it, edit or void an organisation.",
    record_check=lambda user, organisation: user.role == "admin"
    or sees_whole_installation(user) or user.organisation_id in (
        organisation.id, organisation.added_by_organisation_id))
can_write_methodology = permission(
    "write the methodology note of a report", "compliance",
    refusal="Only a compliance officer of the organisation writes its methodology note.",
    record_check=lambda user, organisation: own_organisation(user, organisation.id))
can_review = permission("read the review queue, flags and dashboard", "compliance", "auditor")
can_resolve_flags = permission("resolve flags", "compliance",
                               refusal="Only compliance officers can resolve flags.")
can_sign_off = permission("sign reviews off", "compliance",
                          refusal="Only compliance officers sign off reviews.")
# Patient partners read the policy (and its proposed versions) they are asked to sign off.
can_read_policy = permission("read the policy", "advocate", "compliance", "auditor", "admin",
                             "partner")
can_manage_policy = permission(
    "re-evaluate records against the policy", "compliance",
    refusal="Only compliance officers re-evaluate records against the policy.")
can_change_policy = permission(
    "propose, put in force and withdraw policy versions", "compliance",
    refusal="Only compliance officers propose a policy version or put one in force.")
can_sign_off_policy = permission(
    "sign off a policy version", "partner",
    refusal="Only a patient partner's representative signs off a policy version.")
can_read_reevaluations = permission("read re-evaluation runs", "compliance", "auditor")
can_read_reports = permission("read transparency reports", "compliance", "auditor")


# A patient group's declared yearly figures and its own caps (PART-CONCENTRATION).
def _reads_group_figures(user, group) -> bool:
    from .organisations.services import in_partnership_with

    organisations = acting_organisation_ids(user)
    return group.kind == "patient_group" and (
        sees_whole_installation(user) or group.id in (organisations or ())
        or in_partnership_with(organisations, group.id))


def _records_group_figures(user, group) -> bool:
    """The group's own representative, or a compliance officer of the group or of an
    organisation in partnership with it."""
    from .organisations.services import in_partnership_with

    if group.kind != "patient_group" or group.is_void:
        return False
    if sees_whole_installation(user) or user.organisation_id == group.id:
        return True
    return user.role == "compliance" and in_partnership_with((user.organisation_id,), group.id)


can_read_yearly_figures = permission(
    "read a patient group's yearly figures", "advocate", "compliance", "auditor", "partner",
    refusal="Only the patient group's people and those of organisations in partnership with it "
            "read its yearly figures.",
    record_check=_reads_group_figures)
can_record_yearly_figures = permission(
    "record a patient group's yearly figures and industry policy", "partner", "compliance",
    refusal="Only the patient group's own representatives, and compliance officers of an "
            "organisation in partnership with it, record its yearly figures and industry "
            "policy.",
    record_check=_records_group_figures)

can_reconcile_funding = permission(
    "read a patient group's funding received beside its funders' disclosures", "compliance",
    "auditor",
    refusal="Only the patient group's compliance officers and auditors read its reconciliation.",
    record_check=lambda user, organisation: organisation.kind == "patient_group" and (
        sees_whole_installation(user)
        or organisation.id in (acting_organisation_ids(user) or ())))
can_make_reports = permission(
    "generate, publish and correct transparency reports", "compliance",
    refusal="Only a compliance officer of the organisation generates and publishes its "
            "reports.",
    record_check=lambda user, organisation_id: own_organisation(user, organisation_id))
can_confirm_records = permission(
    "confirm or dispute records", "partner",
    refusal="Only the partner organisation's representatives confirm or dispute records.")
can_read_disputes = permission("read disputes", "compliance", "auditor")
can_answer_disputes = permission(
    "keep a disputed record unchanged, with a reason", "advocate", "compliance",
    refusal="Only the recording organisation's advocates and compliance officers answer a "
            "dispute.")
can_read_audit_trail = permission("read the audit trail", "compliance", "auditor")
can_read_history = permission("read a record's history", "advocate", "compliance", "auditor")
can_read_activities = permission("read the activity catalogue", *ALL_ROLES)
can_add_activities = permission(
    "add an organisation's own activity", "advocate", "compliance", "partner",
    refusal="Only advocates, compliance officers and partners add activities.")
can_retire_activities = permission(
    "withdraw an organisation's own activity", "advocate", "compliance",
    refusal="Only your organisation's advocates or a compliance officer can withdraw this "
            "activity.",
    record_check=lambda user, activity: own_organisation(user, activity.organisation_id))
can_rate_activities = permission(
    "work on prioritisation exercises", "advocate", "compliance", "partner",
    refusal="Only the partners' own teams work on a prioritisation exercise.",
    # The record is the organisation whose side it is: each side works on its own (a
    # compliance officer of the whole installation on either).
    record_check=lambda user, side_organisation_id: sees_whole_installation(user)
    or (user.organisation_id is not None and user.organisation_id == side_organisation_id))
can_read_draft_exercises = permission("read either side's draft prioritisation", "compliance",
                                      "auditor")
can_import = permission("import records from CSV", "advocate", "compliance",
                        refusal="Only advocates and compliance officers import records.")
can_export = can_read_records
can_export_audit_trail = permission("export the audit trail", "compliance", "auditor")
can_manage_users = permission("manage users", "admin",
                              refusal="Only administrators manage users.")

# Individual payments (governance/payments): fees and expenses paid to members of the public.
can_read_individual_payments = permission(
    "read individual payments", "advocate", "compliance", "auditor",
    refusal="Only the paying organisation's advocates, compliance officers and auditors read "
            "payments to individuals.")
can_record_individual_payments = permission(
    "record individual payments", "advocate", "compliance",
    refusal="Only advocates and compliance officers record payments to individuals.")
can_edit_individual_payment = permission(
    "edit or void an individual payment", "advocate", "compliance",
    refusal="You can change only the payments your organisation made.",
    record_check=lambda user, payment: own_organisation(user, payment.organisation_id))
# --- agreements (issue #18: the written agreement behind support) ---------------------------
# Recording and editing an agreement is editing its partnership (can_edit_partnership);
# certifying it is the sponsor's own: a compliance officer of the sponsor signs it.
can_certify_agreements = permission(
    "certify agreements (the sponsor's nominated signatory)", "compliance",
    refusal="Only a compliance officer of the sponsor certifies its agreements.",
    record_check=lambda user, agreement: own_organisation(user, agreement.partnership.sponsor_id))
# Approval before the event (issue #18): the advocate submits a plan, a compliance officer of the
# organisation holding the interaction approves or rejects it (never their own plan: services).
can_submit_plans = permission(
    "submit a planned interaction for approval", "advocate", "compliance",
    refusal="Only advocates and compliance officers submit plans for approval.")
can_approve_plans = permission(
    "approve or reject planned interactions", "compliance",
    refusal="Only a compliance officer of the organisation holding the interaction approves or "
            "rejects its plan.",
    record_check=lambda user, interaction: own_organisation(user, interaction.organisation_id))


# --- what a user may see -------------------------------------------------------------------


def sees_void(user) -> bool:
    return getattr(user, "role", None) in VOID_READERS


def sees_whole_installation(user) -> bool:
    """A compliance officer or auditor created without an organisation acts for every one."""
    return getattr(user, "is_authenticated", False) and user.role in VOID_READERS \
        and user.organisation_id is None


def _live(model, user):
    return true() if sees_void(user) else model.voided_at.is_(None)


def partnership_scope(user):
    """SQL condition: the partnerships this user may see."""
    from .partnerships.models import Partnership, partnership_members

    organisations = _acting_in_sql(user)
    if organisations is None:
        return true()
    if organisations == ():
        return false()
    member_of = select(partnership_members.c.partnership_id).where(
        partnership_members.c.organisation_id.in_(organisations))
    return or_(Partnership.sponsor_id.in_(organisations),
               Partnership.patient_group_id.in_(organisations),
               Partnership.id.in_(member_of)) & _live(Partnership, user)


def visible_partnership_ids(user):
    from .partnerships.models import Partnership

    return select(Partnership.id).where(partnership_scope(user))


def interaction_scope(user):
    """SQL condition: the interactions this user may see: those of visible partnerships and,
    except for partners, those the user's organisations logged outside any partnership."""
    from .interactions.models import Interaction

    organisations = _acting_in_sql(user)
    if organisations is None:
        return true()
    if organisations == ():
        return false()
    visible = Interaction.partnership_id.in_(visible_partnership_ids(user))
    if user.role != "partner":
        visible = or_(visible, Interaction.organisation_id.in_(organisations))
    return visible & _live(Interaction, user)


def flag_scope(user):
    """SQL condition: the flags of the interactions and partnerships this user may see."""
    from .interactions.models import Interaction
    from .rules.models import Flag

    if sees_whole_installation(user):
        return true()
    from .payments.models import IndividualPayment

    return or_(Flag.interaction_id.in_(select(Interaction.id).where(interaction_scope(user))),
               Flag.partnership_id.in_(visible_partnership_ids(user)),
               Flag.individual_payment_id.in_(
                   select(IndividualPayment.id).where(individual_payment_scope(user))),
               Flag.agreement_id.in_(visible_agreement_ids(user)))


def support_scope(user):
    """SQL condition: the support lines of the partnerships this user may see."""
    from .partnerships.models import Support

    if sees_whole_installation(user):
        return true()
    return Support.partnership_id.in_(visible_partnership_ids(user)) & _live(Support, user)


def organisation_scope(user):
    """SQL condition: the organisations this user may see. Administrators see every one; the
    others their own, the parties of their partnerships, and those their organisation added."""
    from .organisations.models import Organisation
    from .partnerships.models import Partnership, partnership_members

    if user.role == "admin" or sees_whole_installation(user):
        return true()
    organisations = _acting_in_sql(user)
    if organisations == ():
        return false()
    partnerships = visible_partnership_ids(user)
    parties = (select(Partnership.sponsor_id).where(Partnership.id.in_(partnerships))
               .union(select(Partnership.patient_group_id)
                      .where(Partnership.id.in_(partnerships)),
                      select(partnership_members.c.organisation_id)
                      .where(partnership_members.c.partnership_id.in_(partnerships))))
    return or_(Organisation.id.in_(organisations), Organisation.id.in_(parties),
               Organisation.added_by_organisation_id.in_(organisations)) \
        & _live(Organisation, user)


def report_scope(user):
    """SQL condition: the transparency reports this user may read (of their organisations)."""
    from .reports.models import Report

    if not can_read_reports(user):
        return false()
    organisations = _acting_in_sql(user)
    if organisations is None:
        return true()
    return false() if organisations == () else Report.organisation_id.in_(organisations)


def reevaluation_scope(user):
    """SQL condition: the re-evaluation runs asked for by people of the user's organisations
    (a run re-evaluates the whole installation; who asked, and its page, stay with them)."""
    from .auth.models import User
    from .rules.models import ReevaluationRun

    organisations = _acting_in_sql(user)
    if organisations is None:
        return true()
    if organisations == ():
        return false()
    return ReevaluationRun.requested_by_id.in_(
        select(User.id).where(User.organisation_id.in_(organisations)))


def attachment_scope(user):
    """SQL condition: the attachments of the interactions and partnerships this user may see."""
    from .attachments.models import Attachment
    from .interactions.models import Interaction

    if sees_whole_installation(user):
        return true()
    return or_(Attachment.interaction_id.in_(select(Interaction.id)
                                             .where(interaction_scope(user))),
               Attachment.partnership_id.in_(visible_partnership_ids(user)),
               Attachment.agreement_id.in_(visible_agreement_ids(user))) \
        & _live(Attachment, user)


def agreement_scope(user):
    """SQL condition: the agreements of the partnerships this user may see."""
    from .agreements.models import Agreement

    if sees_whole_installation(user):
        return true()
    return Agreement.partnership_id.in_(visible_partnership_ids(user)) & _live(Agreement, user)


def visible_agreement_ids(user):
    from .agreements.models import Agreement

    return select(Agreement.id).where(agreement_scope(user))


def individual_payment_scope(user):
    """SQL condition: the individual payments this user may see: those of the interactions they
    see, and those their organisations made (partners see none)."""
    from .interactions.models import Interaction
    from .payments.models import IndividualPayment

    organisations = _acting_in_sql(user)
    if organisations is None:
        return true()
    if organisations == () or user.role == "partner":
        return false()
    visible = or_(IndividualPayment.organisation_id.in_(organisations),
                  IndividualPayment.interaction_id.in_(
                      select(Interaction.id).where(interaction_scope(user))))
    return visible & _live(IndividualPayment, user)


def _audited_records():
    """Each audited kind of record a user may read the history of, with its scope."""
    from .activities.models import ActivityRating, CustomActivity, PrioritisationExercise
    from .agreements.models import Agreement
    from .attachments.models import Attachment
    from .auth.models import AuditorGrant, User
    from .interactions.models import Interaction
    from .organisations.models import GroupYearlyFigures, Organisation
    from .partnerships.models import Partnership, Support
    from .payments.models import IndividualPayment
    from .reports.models import Report
    from .rules.models import Flag, PolicySignOff, PolicyVersion
    from .users.models import Invitation

    def of_organisations(model):
        def scope(user):
            organisations = _acting_in_sql(user)
            if organisations is None:
                return true()
            return false() if organisations == () else model.organisation_id.in_(organisations)
        return scope

    exercises = PrioritisationExercise
    return {
        Interaction: interaction_scope, Partnership: partnership_scope, Support: support_scope,
        Flag: flag_scope, Attachment: attachment_scope, Organisation: organisation_scope,
        Report: report_scope, PrioritisationExercise: exercise_scope,
        ActivityRating: lambda user: ActivityRating.exercise_id.in_(
            select(exercises.id).where(exercise_scope(user))),
        CustomActivity: of_organisations(CustomActivity), User: of_organisations(User),
        AuditorGrant: of_organisations(AuditorGrant),
        Invitation: lambda user: Invitation.user_id.in_(
            select(User.id).where(of_organisations(User)(user))),
        IndividualPayment: individual_payment_scope,
        Agreement: agreement_scope,
        GroupYearlyFigures: lambda user: GroupYearlyFigures.organisation_id.in_(
            select(Organisation.id).where(organisation_scope(user))),
        # One policy serves the installation: its versions and sign-offs are everyone's to read.
        PolicyVersion: lambda _user: true(), PolicySignOff: lambda _user: true(),
    }


def history_scope(entity: str):
    """The scope of one kind of audited record, by its audit name (None: nobody reads its
    history through the trail)."""
    for model, scope in _audited_records().items():
        if model.audit_entity() == entity:
            return model, scope
    return None


def audit_scope(user):
    """SQL condition: the audit events of the records this user may see."""
    from .audit import AuditEvent

    if sees_whole_installation(user):
        return true()
    if not acting_organisation_ids(user):
        return false()
    return or_(*(
        (AuditEvent.entity == model.audit_entity())
        & AuditEvent.entity_id.in_(select(model.id).where(scope(user)))
        for model, scope in _audited_records().items()))


def scope_key(user) -> tuple:
    """What a user's scopes depend on: users with the same key see the same records (the key
    of cached renderings of a scope, such as a filter's options)."""
    return (user.role in VOID_READERS, user.role == "partner", user.role == "admin",
            acting_organisation_ids(user))


def _plainly_visible_interaction(user, interaction) -> bool:
    """What interaction_scope lets through, where it is plain without a query."""
    organisations = acting_organisation_ids(user)
    return organisations is None or (
        user.role != "partner" and interaction.organisation_id in organisations
        and (interaction.voided_at is None or sees_void(user)))


def _plainly_visible_partnership(user, partnership) -> bool:
    organisations = acting_organisation_ids(user)
    return organisations is None or (
        bool({partnership.sponsor_id, partnership.patient_group_id} & set(organisations))
        and (partnership.voided_at is None or sees_void(user)))


def _plainly_visible_organisation(user, organisation) -> bool:
    organisations = acting_organisation_ids(user)
    return user.role == "admin" or organisations is None or (
        organisation.id in organisations and (organisation.voided_at is None or sees_void(user)))


# A scope's shortcut may only say "visible"; when it cannot, the scope's query decides.
PLAIN_SCOPES = {interaction_scope: _plainly_visible_interaction,
                partnership_scope: _plainly_visible_partnership,
                organisation_scope: _plainly_visible_organisation}


def visible_record(model, record_id: int, scope, user, options=()):
    """Load a record the user may see, or None (when it does not exist or is not theirs).
    `options`: loader options (what to load with it)."""
    plainly_visible = PLAIN_SCOPES.get(scope)
    if plainly_visible is not None:
        record = db.session.get(model, record_id, options=options)
        if record is None or plainly_visible(user, record):
            return record
    return db.session.scalar(
        select(model).options(*options).where(model.id == record_id, scope(user)))


def visible_or_404(model, record_id: int, scope, options=()):
    """Load a record the current user may see, or answer 404 (never reveal that it exists)."""
    record = visible_record(model, record_id, scope, current_user, options)
    if record is None:
        abort(404)
    return record


# --- routes declare them -------------------------------------------------------------------


def allow(perm: Permission):
    """Declare the permission a view needs; a view that declares nothing refuses everyone."""
    if not isinstance(perm, Permission):
        raise TypeError(f"allow() takes a Permission, not {perm!r}")

    def decorate(view):
        view.permission = perm
        return view

    return decorate


public = allow(EVERYONE)


def permission_for(endpoint: str, method: str = "GET") -> Permission | None:
    """The permission a route declares for a method, or None (it refuses everyone)."""
    view = current_app.view_functions.get(endpoint)
    if view is None:
        return None
    view_class = getattr(view, "view_class", None)
    if view_class is not None:
        handler = getattr(view_class, method.lower(), None)
        if handler is None and method == "HEAD":
            handler = getattr(view_class, "get", None)
        return getattr(handler, "permission", getattr(view_class, "permission", None))
    return getattr(view, "permission", None)


def may(endpoint: str, method: str = "GET", record=None) -> bool:
    """Whether the current user may use a route (for navigation and templates)."""
    perm = permission_for(endpoint, method)
    return perm is not None and (perm == EVERYONE or perm(current_user, record))


# --- an organisation's own prioritisation exercises (before any partnership) ----------------

can_run_own_exercises = permission(
    "run an organisation's own prioritisation exercise", "advocate", "compliance",
    refusal="Only your organisation's advocates and compliance officers run its own "
            "prioritisation exercises; nothing was changed.",
    # The record is the organisation whose exercise it is.
    record_check=lambda user, organisation_id: own_organisation(user, organisation_id))
can_read_own_exercises = permission(
    "read an organisation's own prioritisation exercises", "advocate", "compliance", "auditor",
    record_check=lambda user, organisation_id: acts_for(user, organisation_id))


def exercise_scope(user):
    """SQL condition: the prioritisation exercises a user may read the history of: those of
    the partnerships the user sees, and the own exercises (no partnership yet) of the
    organisations the user acts for, for the roles that read them."""
    from .activities.models import PrioritisationExercise as Exercise

    of_partnerships = Exercise.partnership_id.in_(visible_partnership_ids(user))
    if getattr(user, "role", None) not in can_read_own_exercises.roles:
        return of_partnerships
    organisations = _acting_in_sql(user)
    if organisations == ():
        return of_partnerships
    own = Exercise.partnership_id.is_(None)
    if organisations is not None:
        own = own & Exercise.organisation_id.in_(organisations)
    return or_(of_partnerships, own)
