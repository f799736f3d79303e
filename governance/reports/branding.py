"""The look of an organisation's published reports: its logo and colour, set by compliance."""

import io
import re

from .. import audit, storage
from ..errors import Conflict, ValidationFailed
from ..extensions import db
from ..organisations.models import Organisation
from ..permissions import can_write_methodology, require

LOGO_MAX_BYTES = 1024 * 1024
LOGO_MAX_SIDE = 4000
LOGO_FORMATS = {"PNG": "image/png", "JPEG": "image/jpeg"}
COLOUR = re.compile(r"#[0-9a-fA-F]{6}")
DEFAULT_COLOUR = "#0b3d91"


def checked_logo(content: bytes) -> tuple[bytes, str]:
    """The logo and its media type, or a 422 on `logo` saying why it cannot be one."""
    from PIL import Image, UnidentifiedImageError

    if not content:
        raise ValidationFailed({"logo": ["Choose an image file for the logo."]})
    if len(content) > LOGO_MAX_BYTES:
        raise ValidationFailed({"logo": [
            f"The logo is {len(content) / 1024 / 1024:.1f} MB; keep it to 1 MB or less."]})
    try:
        with Image.open(io.BytesIO(content)) as image:
            image.verify()
            kind, size = image.format, image.size
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError):
        raise ValidationFailed({"logo": ["This file is not an image: upload the logo as a PNG "
                                         "or JPEG."]}) from None
    if kind not in LOGO_FORMATS:
        raise ValidationFailed({"logo": [f"A {kind} image cannot be printed in the report: "
                                         "upload the logo as a PNG or JPEG."]})
    if max(size) > LOGO_MAX_SIDE:
        raise ValidationFailed({"logo": [f"The logo is {size[0]} × {size[1]} pixels; keep each "
                                         f"side to {LOGO_MAX_SIDE:,} pixels or fewer."]})
    return content, LOGO_FORMATS[kind]


def checked_colour(value: str | None) -> str | None:
    value = (value or "").strip()
    if not value:
        return None
    if not COLOUR.fullmatch(value):
        raise ValidationFailed({"brand_colour": [
            "Give the colour as # and six hexadecimal digits, such as #0b3d91."]})
    return value.lower()


def update_branding(organisation: Organisation, actor, colour: str | None,
                    logo: bytes | None = None, remove_logo: bool = False) -> Organisation:
    """Set the colour, and replace or remove the logo; every change is audited. Reports
    generated from now on carry them; published ones keep theirs."""
    require(can_write_methodology, actor, organisation)
    if organisation.is_void:
        raise Conflict("This organisation has been voided.")
    clean_colour = checked_colour(colour)
    if logo:
        content, media_type = checked_logo(logo)
        stored = storage.LOGOS.store(content)
        organisation.logo_sha256, organisation.logo_media_type = stored.sha256, media_type
    elif remove_logo:
        organisation.logo_sha256 = organisation.logo_media_type = None
    organisation.brand_colour = clean_colour
    if db.session.is_modified(organisation):
        audit.set_reason("Report branding changed")
    db.session.flush()
    return organisation
