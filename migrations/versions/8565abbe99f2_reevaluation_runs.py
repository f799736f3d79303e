"""Re-evaluation runs: the review queue's re-evaluation of every record, run in the background.

Revision ID: 8565abbe99f2
Revises: 06f5b61712de
Create Date: 2026-11-21 14:32:17.631841

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '8565abbe99f2'
down_revision = '06f5b61712de'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('reevaluation_runs',
    sa.Column('requested_by_id', sa.Integer(), nullable=False),
    sa.Column('state', sa.Enum('queued', 'running', 'done', 'failed', name='reevaluation_state', native_enum=False, create_constraint=True), nullable=False),
    sa.Column('policy_version', sa.String(length=40), nullable=True),
    sa.Column('progress', sa.Integer(), nullable=False),
    sa.Column('progress_note', sa.String(length=200), nullable=True),
    sa.Column('summary', sa.Text(), nullable=True),
    sa.Column('error', sa.Text(), nullable=True),
    sa.Column('job_token', sa.String(length=32), nullable=True),
    sa.Column('started_at', sa.DateTime(), nullable=True),
    sa.Column('finished_at', sa.DateTime(), nullable=True),
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.Column('updated_at', sa.DateTime(), nullable=False),
    sa.Column('voided_at', sa.DateTime(), nullable=True),
    sa.Column('void_reason', sa.Text(), nullable=True),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.CheckConstraint('progress BETWEEN 0 AND 100', name=op.f('ck_reevaluation_runs_progress_is_a_percentage')),
    sa.ForeignKeyConstraint(['requested_by_id'], ['users.id'], name=op.f('fk_reevaluation_runs_requested_by_id_users')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_reevaluation_runs'))
    )
    with op.batch_alter_table('reevaluation_runs', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_reevaluation_runs_state'), ['state'], unique=False)



def downgrade():
    with op.batch_alter_table('reevaluation_runs', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_reevaluation_runs_state'))

    op.drop_table('reevaluation_runs')
