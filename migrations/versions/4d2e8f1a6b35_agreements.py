"""Agreements: the written agreement each support line is paid under.

Revision ID: 4d2e8f1a6b35
Revises: 3c1f0a9e7b21
Create Date: 2026-12-02 04:35:00

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '4d2e8f1a6b35'
down_revision = '3c1f0a9e7b21'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('agreements',
    sa.Column('partnership_id', sa.Integer(), nullable=False),
    sa.Column('kind', sa.Enum('grant', 'donation', 'sponsorship', 'contracted_service', 'in_kind', 'framework', name='agreement_kind', native_enum=False, create_constraint=True), nullable=False),
    sa.Column('objective', sa.Text(), nullable=False),
    sa.Column('parties_and_roles', sa.Text(), nullable=True),
    sa.Column('starts_on', sa.Date(), nullable=True),
    sa.Column('ends_on', sa.Date(), nullable=True),
    sa.Column('amount', sa.Numeric(precision=14, scale=2), nullable=True),
    sa.Column('currency', sa.String(length=3), nullable=True),
    sa.Column('signed_on', sa.Date(), nullable=True),
    sa.Column('signatories', sa.Text(), nullable=True),
    sa.Column('certified_by_id', sa.Integer(), nullable=True),
    sa.Column('certified_at', sa.DateTime(), nullable=True),
    sa.Column('certification_meaning', sa.Text(), nullable=True),
    sa.Column('external_id', sa.String(length=100), nullable=True),
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.Column('updated_at', sa.DateTime(), nullable=False),
    sa.Column('voided_at', sa.DateTime(), nullable=True),
    sa.Column('void_reason', sa.Text(), nullable=True),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.CheckConstraint('amount IS NULL OR amount >= 0', name=op.f('ck_agreements_amount_not_negative')),
    sa.CheckConstraint('ends_on IS NULL OR starts_on IS NULL OR ends_on >= starts_on', name=op.f('ck_agreements_ends_after_starts')),
    sa.ForeignKeyConstraint(['certified_by_id'], ['users.id'], name=op.f('fk_agreements_certified_by_id_users')),
    sa.ForeignKeyConstraint(['partnership_id'], ['partnerships.id'], name=op.f('fk_agreements_partnership_id_partnerships')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_agreements')),
    sa.UniqueConstraint('external_id', name=op.f('uq_agreements_external_id'))
    )
    with op.batch_alter_table('agreements', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_agreements_partnership_id'), ['partnership_id'], unique=False)
    with op.batch_alter_table('supports', schema=None) as batch_op:
        batch_op.add_column(sa.Column('agreement_id', sa.Integer(), nullable=True))
        batch_op.create_index(batch_op.f('ix_supports_agreement_id'), ['agreement_id'], unique=False)
        batch_op.create_foreign_key(batch_op.f('fk_supports_agreement_id_agreements'), 'agreements', ['agreement_id'], ['id'])


def downgrade():
    with op.batch_alter_table('supports', schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f('fk_supports_agreement_id_agreements'), type_='foreignkey')
        batch_op.drop_index(batch_op.f('ix_supports_agreement_id'))
        batch_op.drop_column('agreement_id')
    with op.batch_alter_table('agreements', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_agreements_partnership_id'))
    op.drop_table('agreements')
