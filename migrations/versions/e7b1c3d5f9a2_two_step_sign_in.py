"""Two-step sign-in: a TOTP secret, its last accepted time step and hashed recovery codes per
user, whether an administrator's reset requires setting it up again, and the first sign-in the
set-up grace counts from.

Revision ID: e7b1c3d5f9a2
Revises: e7a1c3b5d9f2
Create Date: 2026-12-03 09:00:00

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = 'e7b1c3d5f9a2'
down_revision = 'e7a1c3b5d9f2'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('users', schema=None) as batch_op:
        batch_op.add_column(sa.Column('first_sign_in_at', sa.DateTime(), nullable=True))
        batch_op.add_column(sa.Column('mfa_secret', sa.String(length=32), nullable=True))
        batch_op.add_column(sa.Column('mfa_enabled_at', sa.DateTime(), nullable=True))
        batch_op.add_column(sa.Column('mfa_last_step', sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column('mfa_recovery_hashes', sa.Text(), nullable=True))
        batch_op.add_column(sa.Column('must_enrol_mfa', sa.Boolean(), server_default=sa.false(),
                                      nullable=False))


def downgrade():
    with op.batch_alter_table('users', schema=None) as batch_op:
        for column in ('must_enrol_mfa', 'mfa_recovery_hashes', 'mfa_last_step',
                       'mfa_enabled_at', 'mfa_secret', 'first_sign_in_at'):
            batch_op.drop_column(column)
