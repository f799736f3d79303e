"""Import uploads bound to their uploader: a row per (file, user) in place of the file's JSON
sidecar, so only the person who uploaded a file previews and commits it.

Revision ID: e6a1b3c5d7f9
Revises: d4f5a6b7c8e9
Create Date: 2026-12-02 15:00:00

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = 'e6a1b3c5d7f9'
down_revision = 'd4f5a6b7c8e9'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('import_uploads',
    sa.Column('sha256', sa.String(length=64), nullable=False),
    sa.Column('uploaded_by_id', sa.Integer(), nullable=False),
    sa.Column('filename', sa.String(length=200), nullable=False),
    sa.Column('uploaded_at', sa.DateTime(), nullable=False),
    sa.ForeignKeyConstraint(['uploaded_by_id'], ['users.id'],
                            name=op.f('fk_import_uploads_uploaded_by_id_users')),
    sa.PrimaryKeyConstraint('sha256', 'uploaded_by_id', name=op.f('pk_import_uploads'))
    )


def downgrade():
    op.drop_table('import_uploads')
