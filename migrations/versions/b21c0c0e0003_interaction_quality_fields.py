"""Interaction quality fields: whether the roles and responsibilities of the patients and of the
sponsor were agreed beforehand, and whether preparation or training was offered to the patients
taking part (PFMD "roles and responsibilities" and "capacity and capability"; issue #21).

Revision ID: b21c0c0e0003
Revises: b21b0c0e0002
Create Date: 2026-12-10 10:00:00.000000

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = 'b21c0c0e0003'
down_revision = 'b21b0c0e0002'
branch_labels = None
depends_on = None


def upgrade():
    # Nothing recorded so far says either was done: both start as not recorded (false).
    with op.batch_alter_table('interactions', schema=None) as batch_op:
        batch_op.add_column(sa.Column('preparation_offered', sa.Boolean(),
                                      server_default=sa.false(), nullable=False))
        batch_op.add_column(sa.Column('roles_agreed', sa.Boolean(),
                                      server_default=sa.false(), nullable=False))


def downgrade():
    with op.batch_alter_table('interactions', schema=None) as batch_op:
        batch_op.drop_column('roles_agreed')
        batch_op.drop_column('preparation_offered')
