"""Individual payments: fees and expenses paid to members of the public (ABPI clause 30), and
flags on them (flags.individual_payment_id; a flag still has exactly one subject).

Revision ID: b8d2f3e4a5c6
Revises: 5b7d2e8c4a10
Create Date: 2026-12-02 05:10:00

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = 'b8d2f3e4a5c6'
down_revision = '5b7d2e8c4a10'
branch_labels = None
depends_on = None

TWO_SUBJECTS = "(interaction_id IS NULL) <> (partnership_id IS NULL)"
THREE_SUBJECTS = ("(CASE WHEN interaction_id IS NULL THEN 0 ELSE 1 END) + "
                  "(CASE WHEN partnership_id IS NULL THEN 0 ELSE 1 END) + "
                  "(CASE WHEN individual_payment_id IS NULL THEN 0 ELSE 1 END) = 1")


def upgrade():
    op.create_table('individual_payments',
    sa.Column('organisation_id', sa.Integer(), nullable=False),
    sa.Column('interaction_id', sa.Integer(), nullable=True),
    sa.Column('payee_reference', sa.String(length=60), nullable=False),
    sa.Column('payee_kind', sa.Enum('patient', 'caregiver', 'other_member_of_public', name='payee_kind', native_enum=False, create_constraint=True), nullable=False),
    sa.Column('service', sa.Enum('advisory_board', 'consultancy', 'speaking', 'review', 'research_participation_fee', 'other', name='payment_service', native_enum=False, create_constraint=True), nullable=False),
    sa.Column('hours', sa.Numeric(precision=6, scale=2), nullable=True),
    sa.Column('fee', sa.Numeric(precision=14, scale=2), nullable=False),
    sa.Column('expenses', sa.Numeric(precision=14, scale=2), nullable=False),
    sa.Column('currency', sa.String(length=3), nullable=False),
    sa.Column('paid_on', sa.Date(), nullable=False),
    sa.Column('agreement_id', sa.Integer(), nullable=True),
    sa.Column('external_id', sa.String(length=100), nullable=True),
    sa.Column('created_by_id', sa.Integer(), nullable=True),
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.Column('updated_at', sa.DateTime(), nullable=False),
    sa.Column('voided_at', sa.DateTime(), nullable=True),
    sa.Column('void_reason', sa.Text(), nullable=True),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.CheckConstraint('fee >= 0', name=op.f('ck_individual_payments_fee_not_negative')),
    sa.CheckConstraint('expenses >= 0', name=op.f('ck_individual_payments_expenses_not_negative')),
    sa.CheckConstraint('hours IS NULL OR hours > 0', name=op.f('ck_individual_payments_hours_positive')),
    sa.ForeignKeyConstraint(['agreement_id'], ['agreements.id'], name=op.f('fk_individual_payments_agreement_id_agreements')),
    sa.ForeignKeyConstraint(['created_by_id'], ['users.id'], name=op.f('fk_individual_payments_created_by_id_users')),
    sa.ForeignKeyConstraint(['interaction_id'], ['interactions.id'], name=op.f('fk_individual_payments_interaction_id_interactions')),
    sa.ForeignKeyConstraint(['organisation_id'], ['organisations.id'], name=op.f('fk_individual_payments_organisation_id_organisations')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_individual_payments')),
    sa.UniqueConstraint('external_id', name=op.f('uq_individual_payments_external_id'))
    )
    with op.batch_alter_table('individual_payments', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_individual_payments_agreement_id'), ['agreement_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_individual_payments_interaction_id'), ['interaction_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_individual_payments_organisation_id'), ['organisation_id'], unique=False)
        batch_op.create_index('ix_individual_payments_organisation_id_paid_on', ['organisation_id', 'paid_on'], unique=False)
        batch_op.create_index(batch_op.f('ix_individual_payments_payee_reference'), ['payee_reference'], unique=False)

    with op.batch_alter_table('flags', schema=None) as batch_op:
        batch_op.add_column(sa.Column('individual_payment_id', sa.Integer(), nullable=True))
        batch_op.create_index(batch_op.f('ix_flags_individual_payment_id'), ['individual_payment_id'], unique=False)
        batch_op.create_foreign_key(batch_op.f('fk_flags_individual_payment_id_individual_payments'), 'individual_payments', ['individual_payment_id'], ['id'])
        batch_op.drop_constraint(batch_op.f('ck_flags_exactly_one_subject'), type_='check')
        batch_op.create_check_constraint('exactly_one_subject', THREE_SUBJECTS)


def downgrade():
    with op.batch_alter_table('flags', schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f('ck_flags_exactly_one_subject'), type_='check')
        batch_op.create_check_constraint('exactly_one_subject', TWO_SUBJECTS)
        batch_op.drop_constraint(batch_op.f('fk_flags_individual_payment_id_individual_payments'), type_='foreignkey')
        batch_op.drop_index(batch_op.f('ix_flags_individual_payment_id'))
        batch_op.drop_column('individual_payment_id')
    with op.batch_alter_table('individual_payments', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_individual_payments_payee_reference'))
        batch_op.drop_index('ix_individual_payments_organisation_id_paid_on')
        batch_op.drop_index(batch_op.f('ix_individual_payments_organisation_id'))
        batch_op.drop_index(batch_op.f('ix_individual_payments_interaction_id'))
        batch_op.drop_index(batch_op.f('ix_individual_payments_agreement_id'))
    op.drop_table('individual_payments')
