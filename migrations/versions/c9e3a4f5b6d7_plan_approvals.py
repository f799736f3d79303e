"""Approval before the event: an interaction's status (planned, held, cancelled), what changed
because of the patients' input, and the submission and compliance decision of a plan.

Revision ID: c9e3a4f5b6d7
Revises: a7c1e2d3f4b5
Create Date: 2026-12-02 05:10:00

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = 'c9e3a4f5b6d7'
down_revision = 'a7c1e2d3f4b5'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('interactions', schema=None) as batch_op:
        # Every interaction recorded so far was logged after the fact: held.
        batch_op.add_column(sa.Column('status', sa.Enum('planned', 'held', 'cancelled', name='interaction_status', native_enum=False, create_constraint=True), server_default='held', nullable=False))
        batch_op.add_column(sa.Column('outcome_changes', sa.Text(), nullable=True))
        batch_op.add_column(sa.Column('submitted_at', sa.DateTime(), nullable=True))
        batch_op.add_column(sa.Column('submitted_by_id', sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column('approval_decision', sa.Enum('approved', 'rejected', name='approval_decision', native_enum=False, create_constraint=True), nullable=True))
        batch_op.add_column(sa.Column('approval_note', sa.Text(), nullable=True))
        batch_op.add_column(sa.Column('approved_by_id', sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column('approved_at', sa.DateTime(), nullable=True))
        batch_op.create_foreign_key(batch_op.f('fk_interactions_submitted_by_id_users'), 'users', ['submitted_by_id'], ['id'])
        batch_op.create_foreign_key(batch_op.f('fk_interactions_approved_by_id_users'), 'users', ['approved_by_id'], ['id'])


def downgrade():
    with op.batch_alter_table('interactions', schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f('fk_interactions_approved_by_id_users'), type_='foreignkey')
        batch_op.drop_constraint(batch_op.f('fk_interactions_submitted_by_id_users'), type_='foreignkey')
        batch_op.drop_column('approved_at')
        batch_op.drop_column('approved_by_id')
        batch_op.drop_column('approval_note')
        batch_op.drop_column('approval_decision')
        batch_op.drop_column('submitted_by_id')
        batch_op.drop_column('submitted_at')
        batch_op.drop_column('outcome_changes')
        batch_op.drop_column('status')
