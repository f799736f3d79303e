"""What the public disclosure's PDF template needs beyond the document itself: the logo as a
data: address, the brand colour (a clean default without one) and each line's agreement in
words. Internal ids stay in the CSV and JSON; the PDF body names records in words."""

import base64

from ..vocabulary import AGREEMENT_KINDS
from .branding import DEFAULT_COLOUR
from .presentation import report_date


def agreement_text(agreement: dict | None) -> str:
    if not agreement:
        return "none"
    if agreement.get("reference"):
        return agreement["reference"]
    kind = AGREEMENT_KINDS.get(agreement.get("kind"), "Written").split(" (")[0]
    signed = agreement.get("signed_on")
    name = kind if kind.lower().endswith("agreement") else f"{kind} agreement"
    return name + (f", signed {report_date(signed)}" if signed else "")


def public_pdf_context(document: dict, logo_bytes: bytes | None) -> dict:
    branding = document.get("branding") or {}
    logo = branding.get("logo")
    logo_src = None
    if logo_bytes and logo:
        logo_src = f"data:{logo['media_type']};base64," + \
            base64.b64encode(logo_bytes).decode("ascii")
    return {"d": document, "logo_src": logo_src,
            "colour": branding.get("colour") or DEFAULT_COLOUR,
            "agreement_text": agreement_text}
