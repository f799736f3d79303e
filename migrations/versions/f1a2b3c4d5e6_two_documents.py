"""Two documents per report (public disclosure and internal governance report), a report's
country scope and reporting currency with the rates used, an organisation's report branding
(logo and colour), and whether an interaction's title may appear in the public disclosure.

Reports generated before this revision hold one set of files, which had internal content: they
become the internal documents, and stay the public ones too until a new version is generated.

Revision ID: f1a2b3c4d5e6
Revises: e7b1c3d5f9a2
Create Date: 2026-12-02 19:30:00

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = 'f1a2b3c4d5e6'
down_revision = 'e7b1c3d5f9a2'
branch_labels = None
depends_on = None

INTERNAL = ('internal_pdf_sha256', 'internal_csv_sha256', 'internal_json_sha256',
            'internal_pdf_size', 'internal_csv_size', 'internal_json_size', 'internal_page_count')


def upgrade():
    with op.batch_alter_table('reports', schema=None) as batch_op:
        batch_op.add_column(sa.Column('country_scope', sa.String(length=3), server_default='all',
                                      nullable=False))
        batch_op.add_column(sa.Column('reporting_currency', sa.String(length=3), nullable=True))
        batch_op.add_column(sa.Column('exchange_rates', sa.JSON(), nullable=True))
        for name in INTERNAL:
            kind = sa.String(length=64) if name.endswith('sha256') else sa.Integer()
            batch_op.add_column(sa.Column(name, kind, nullable=True))
        batch_op.drop_constraint('uq_reports_revision', type_='unique')
        batch_op.create_unique_constraint(
            'uq_reports_revision', ['organisation_id', 'year', 'country_scope', 'revision'])
    op.execute("UPDATE reports SET internal_pdf_sha256 = pdf_sha256, "
               "internal_csv_sha256 = csv_sha256, internal_json_sha256 = json_sha256, "
               "internal_pdf_size = pdf_size, internal_csv_size = csv_size, "
               "internal_json_size = json_size, internal_page_count = page_count")
    with op.batch_alter_table('organisations', schema=None) as batch_op:
        batch_op.add_column(sa.Column('logo_sha256', sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column('logo_media_type', sa.String(length=40), nullable=True))
        batch_op.add_column(sa.Column('brand_colour', sa.String(length=7), nullable=True))
    with op.batch_alter_table('interactions', schema=None) as batch_op:
        batch_op.add_column(sa.Column('publishable', sa.Boolean(), server_default=sa.false(),
                                      nullable=False))


def downgrade():
    with op.batch_alter_table('interactions', schema=None) as batch_op:
        batch_op.drop_column('publishable')
    with op.batch_alter_table('organisations', schema=None) as batch_op:
        for column in ('brand_colour', 'logo_media_type', 'logo_sha256'):
            batch_op.drop_column(column)
    with op.batch_alter_table('reports', schema=None) as batch_op:
        batch_op.drop_constraint('uq_reports_revision', type_='unique')
        batch_op.create_unique_constraint('uq_reports_revision',
                                          ['organisation_id', 'year', 'revision'])
        for name in reversed(INTERNAL):
            batch_op.drop_column(name)
        for column in ('exchange_rates', 'reporting_currency', 'country_scope'):
            batch_op.drop_column(column)
