"""The health check's write probe: a table it inserts a row into and deletes it from again.

Revision ID: d5a8c2e7f1b3
Revises: d4f6a8b0c2e1
Create Date: 2026-12-02 08:30:00

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = 'd5a8c2e7f1b3'
down_revision = 'd4f6a8b0c2e1'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('health_checks',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('checked_at', sa.DateTime(), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_health_checks'))
    )


def downgrade():
    op.drop_table('health_checks')
