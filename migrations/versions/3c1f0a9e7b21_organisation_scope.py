"""Organisation scope: auditors' granted organisations; who added an organisation.

Revision ID: 3c1f0a9e7b21
Revises: 8565abbe99f2
Create Date: 2026-12-02 04:00:00

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '3c1f0a9e7b21'
down_revision = '8565abbe99f2'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('auditor_grants',
    sa.Column('user_id', sa.Integer(), nullable=False),
    sa.Column('organisation_id', sa.Integer(), nullable=False),
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.Column('updated_at', sa.DateTime(), nullable=False),
    sa.Column('voided_at', sa.DateTime(), nullable=True),
    sa.Column('void_reason', sa.Text(), nullable=True),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint(['organisation_id'], ['organisations.id'], name=op.f('fk_auditor_grants_organisation_id_organisations')),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], name=op.f('fk_auditor_grants_user_id_users')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_auditor_grants'))
    )
    with op.batch_alter_table('auditor_grants', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_auditor_grants_user_id'), ['user_id'], unique=False)
    with op.batch_alter_table('organisations', schema=None) as batch_op:
        batch_op.add_column(sa.Column('added_by_organisation_id', sa.Integer(), nullable=True))
        batch_op.create_foreign_key(batch_op.f('fk_organisations_added_by_organisation_id_organisations'), 'organisations', ['added_by_organisation_id'], ['id'])


def downgrade():
    with op.batch_alter_table('organisations', schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f('fk_organisations_added_by_organisation_id_organisations'), type_='foreignkey')
        batch_op.drop_column('added_by_organisation_id')
    with op.batch_alter_table('auditor_grants', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_auditor_grants_user_id'))
    op.drop_table('auditor_grants')
