import io

from flask import Blueprint, abort, current_app, render_template, send_file, url_for
from flask_login import current_user
from flask_wtf import FlaskForm
from flask_wtf.file import FileField
from wtforms import SelectField

from .. import storage
from ..agreements.models import Agreement
from ..errors import ValidationFailed
from ..extensions import db
from ..forms import VoidForm, form_status, options, save_form
from ..interactions.models import Interaction
from ..partnerships.models import Partnership
from ..permissions import (
    agreement_scope,
    allow,
    can_edit_records,
    can_read_records,
    interaction_scope,
    partnership_scope,
    sees_void,
    visible_or_404,
)
from ..vocabulary import ATTACHMENT_LABELS, choices
from . import services
from .models import Attachment

bp = Blueprint("attachments", __name__, url_prefix="/attachments")


class AttachmentForm(FlaskForm):
    label = SelectField("What is it?", choices=options(choices(ATTACHMENT_LABELS)),
                        validate_choice=False)
    file = FileField("File", description=f"{services.ACCEPTED}. The content is checked, not "
                                         "only the name.")


OWNERS = {
    "interaction": (Interaction, interaction_scope, "interactions.view", "interaction_id"),
    "partnership": (Partnership, partnership_scope, "partnerships.view", "partnership_id"),
    "agreement": (Agreement, agreement_scope, "agreements.view", "agreement_id"),
}


def owner_kind(owner) -> str:
    if isinstance(owner, Agreement):
        return "agreement"
    return "interaction" if isinstance(owner, Interaction) else "partnership"


def owner_page(owner) -> str:
    kind = owner_kind(owner)
    _model, _scope, endpoint, key = OWNERS[kind]
    return url_for(endpoint, **{key: owner.id})


def _attach_upload(owner, form: AttachmentForm) -> Attachment:
    upload = form.file.data
    if upload is None or not getattr(upload, "filename", ""):
        raise ValidationFailed({"file": ["Choose a file to attach."]})
    data = upload.stream.read(current_app.config["ATTACHMENT_MAX_BYTES"] + 1)
    return services.attach_file(owner, form.label.data, upload.filename, data, current_user)


def _upload(kind: str, owner_id: int):
    model, scope, _endpoint, _key = OWNERS[kind]
    owner = visible_or_404(model, owner_id, scope)
    if not services.may_change(current_user, owner):
        abort(403)
    form = AttachmentForm()
    if form.validate_on_submit():
        saved = save_form(form, lambda: _attach_upload(owner, form),
                          lambda attachment: f"“{attachment.original_name}” attached.",
                          owner_page(owner))
        if saved:
            return saved
    return render_template("attachments/upload.html", form=form, owner=owner, kind=kind,
                           back=owner_page(owner)), form_status(form)


@bp.route("/interactions/<int:interaction_id>/new", methods=["GET", "POST"])
@allow(can_edit_records)
def upload_to_interaction(interaction_id: int):
    return _upload("interaction", interaction_id)


@bp.route("/partnerships/<int:partnership_id>/new", methods=["GET", "POST"])
@allow(can_edit_records)
def upload_to_partnership(partnership_id: int):
    return _upload("partnership", partnership_id)


@bp.route("/agreements/<int:agreement_id>/new", methods=["GET", "POST"])
@allow(can_edit_records)
def upload_to_agreement(agreement_id: int):
    return _upload("agreement", agreement_id)


def visible_attachment_or_404(attachment_id: int) -> Attachment:
    """Load an attachment whose owning record the current user may see, or answer 404."""
    attachment = db.session.get(Attachment, attachment_id)
    if attachment is None:
        abort(404)
    if attachment.is_void and not sees_void(current_user):
        abort(404)
    if attachment.interaction_id is not None:
        visible_or_404(Interaction, attachment.interaction_id, interaction_scope)
    elif attachment.agreement_id is not None:
        visible_or_404(Agreement, attachment.agreement_id, agreement_scope)
    else:
        visible_or_404(Partnership, attachment.partnership_id, partnership_scope)
    return attachment


@bp.route("/<int:attachment_id>")
@allow(can_read_records)
def download(attachment_id: int):
    attachment = visible_attachment_or_404(attachment_id)
    try:
        content = storage.ATTACHMENTS.read(attachment.sha256)
    except storage.MissingFile as error:
        current_app.logger.error("stored file of attachment %s: %s", attachment.id, error)
        abort(404)
    response = send_file(io.BytesIO(content), mimetype=attachment.media_type,
                         as_attachment=True,
                         download_name=attachment.original_name, conditional=False,
                         etag=False, max_age=0)
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Content-Security-Policy"] = "default-src 'none'; sandbox"
    response.headers["Cache-Control"] = "private, no-store"
    return response


@bp.route("/<int:attachment_id>/void", methods=["GET", "POST"])
@allow(can_edit_records)
def void(attachment_id: int):
    attachment = visible_attachment_or_404(attachment_id)
    owner = services.owner_of(attachment)
    if not services.may_change(current_user, owner):
        abort(403)
    form = VoidForm()
    if form.validate_on_submit():
        saved = save_form(form, lambda: services.void_attachment(attachment, current_user,
                                                                 form.reason.data),
                          "Attachment voided. It stays visible to compliance and auditors.",
                          owner_page(owner), "info")
        if saved:
            return saved
    return render_template("void.html", form=form, record=attachment,
                           kind="attachment"), form_status(form)


def attachment_panel(owner) -> dict:
    """What templates/attachments/_list.html shows for an interaction or a partnership: the
    views of both pages pass it as `attachments`."""
    kind = owner_kind(owner)
    may_change = services.may_change(current_user, owner) and not owner.is_void
    return {
        "items": services.attachments_of(owner, include_void=sees_void(current_user)),
        "may_change": may_change,
        "form": AttachmentForm(formdata=None) if may_change else None,
        "upload_url": url_for(f"attachments.upload_to_{kind}", **{f"{kind}_id": owner.id}),
    }
