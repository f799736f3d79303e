"""A patient group's declared yearly figures (industry support and income per calendar year,
with their source) and its own industry policy caps, which PART-CONCENTRATION measures a
sponsor's share against (issue #21).

Revision ID: b21b0c0e0002
Revises: af26021a0b05
Create Date: 2026-12-10 10:00:00.000000

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = 'b21b0c0e0002'
down_revision = 'af26021a0b05'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('group_yearly_figures',
    sa.Column('organisation_id', sa.Integer(), nullable=False),
    sa.Column('year', sa.Integer(), nullable=False),
    sa.Column('industry_support', sa.Numeric(precision=16, scale=2), nullable=True),
    sa.Column('income', sa.Numeric(precision=16, scale=2), nullable=True),
    sa.Column('currency', sa.String(length=3), nullable=False),
    sa.Column('source', sa.String(length=300), nullable=False),
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.Column('updated_at', sa.DateTime(), nullable=False),
    sa.Column('voided_at', sa.DateTime(), nullable=True),
    sa.Column('void_reason', sa.Text(), nullable=True),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.CheckConstraint('income IS NULL OR income >= 0', name=op.f('ck_group_yearly_figures_income_not_negative')),
    sa.CheckConstraint('industry_support IS NULL OR industry_support >= 0', name=op.f('ck_group_yearly_figures_industry_support_not_negative')),
    sa.ForeignKeyConstraint(['organisation_id'], ['organisations.id'], name=op.f('fk_group_yearly_figures_organisation_id_organisations')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_group_yearly_figures')),
    sa.UniqueConstraint('organisation_id', 'year', name='uq_group_yearly_figures_organisation_year')
    )
    with op.batch_alter_table('organisations', schema=None) as batch_op:
        batch_op.add_column(sa.Column('own_support_cap_pct', sa.Numeric(precision=5, scale=2), nullable=True))
        batch_op.add_column(sa.Column('own_income_cap_pct', sa.Numeric(precision=5, scale=2), nullable=True))


def downgrade():
    with op.batch_alter_table('organisations', schema=None) as batch_op:
        batch_op.drop_column('own_income_cap_pct')
        batch_op.drop_column('own_support_cap_pct')
    op.drop_table('group_yearly_figures')
