"""Job heartbeats: a running report or re-evaluation job beats `heartbeat_at`, and `attempts`
counts its claims, so a job whose worker died is started again a bounded number of times.

Revision ID: d4f5a6b7c8e9
Revises: d5a8c2e7f1b3
Create Date: 2026-12-02 08:20:00

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = 'd4f5a6b7c8e9'
down_revision = 'd5a8c2e7f1b3'
branch_labels = None
depends_on = None

TABLES = ('reports', 'reevaluation_runs')


def upgrade():
    for table in TABLES:
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.add_column(sa.Column('heartbeat_at', sa.DateTime(), nullable=True))
            batch_op.add_column(sa.Column('attempts', sa.Integer(), server_default='0',
                                          nullable=False))


def downgrade():
    for table in TABLES:
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.drop_column('attempts')
            batch_op.drop_column('heartbeat_at')
