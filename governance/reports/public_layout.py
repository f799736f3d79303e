def public_pdf_context(document, logo_bytes):
    return {"d": document}
