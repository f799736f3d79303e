"""The report's branding: a compliance officer uploads the logo and sets the colour; bad files
are refused with the reason and change nothing."""

import io

import pytest
from PIL import Image

from governance.auth import services as accounts
from governance.extensions import db
from governance.reports.branding import LOGO_MAX_BYTES

from .conftest import PASSWORD, login


def png(size=(120, 40), colour=(11, 61, 145)) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", size, colour).save(out, "PNG")
    return out.getvalue()


@pytest.fixture
def officer(sponsor):
    user = accounts.create_user("brand@helix.example", "Brand Officer", "compliance", PASSWORD,
                                sponsor.name)
    db.session.commit()
    return user


def post(client, organisation, **fields):
    data = {"brand_colour": fields.pop("colour", "#0b3d91")}
    if "logo" in fields:
        data["logo"] = (io.BytesIO(fields.pop("logo")), fields.pop("filename", "logo.png"))
    data.update(fields)
    return client.post(f"/reports/branding/{organisation.id}", data=data,
                       content_type="multipart/form-data")


def test_a_compliance_officer_sets_the_logo_and_colour(officer, sponsor, client):
    login(client, officer)
    response = post(client, sponsor, logo=png(), colour="#AA3300")
    assert response.status_code == 303
    db.session.refresh(sponsor)
    assert sponsor.brand_colour == "#aa3300" and sponsor.logo_media_type == "image/png"
    page = client.get(f"/reports/branding/{sponsor.id}").get_data(as_text=True)
    assert 'src="data:image/png;base64,' in page

    assert post(client, sponsor, remove_logo="y", colour="#aa3300").status_code == 303
    db.session.refresh(sponsor)
    assert sponsor.logo_sha256 is None


@pytest.mark.parametrize("content, filename, message", [
    (b"%PDF-1.7 not a picture", "logo.png", "not an image"),
    (b"<svg xmlns='http://www.w3.org/2000/svg'/>", "logo.svg", "not an image"),
])
def test_a_logo_that_is_not_a_small_image_is_refused(officer, sponsor, client, content,
                                                     filename, message):
    login(client, officer)
    response = post(client, sponsor, logo=content, filename=filename)
    assert response.status_code == 422
    assert message in response.get_data(as_text=True)
    db.session.refresh(sponsor)
    assert sponsor.logo_sha256 is None and sponsor.brand_colour is None


def test_a_colour_that_is_not_hexadecimal_is_refused(officer, sponsor, client):
    login(client, officer)
    response = post(client, sponsor, logo=png(), colour="navy")
    assert response.status_code == 422
    assert "six hexadecimal digits" in response.get_data(as_text=True)
    db.session.refresh(sponsor)
    assert sponsor.logo_sha256 is None and sponsor.brand_colour is None


def test_another_organisations_officer_cannot_brand_its_reports(sponsor, make_org, client):
    other = make_org("Northwind Therapeutics", "sponsor", country="US")
    outsider = accounts.create_user("nw@northwind.example", "NW Officer", "compliance",
                                    PASSWORD, other.name)
    db.session.commit()
    login(client, outsider)
    assert post(client, sponsor, logo=png()).status_code == 404
    db.session.refresh(sponsor)
    assert sponsor.logo_sha256 is None


def test_a_logo_over_1_mb_is_refused_saying_so(app):
    from governance.errors import ValidationFailed
    from governance.reports.branding import checked_logo

    with pytest.raises(ValidationFailed) as refused:
        checked_logo(png() + b"\0" * LOGO_MAX_BYTES)
    assert "1 MB or less" in refused.value.fields["logo"][0]
