"""Named prioritisation exercises: a partnership holds several per side (one per study or
programme), and an organisation may run its own before any partnership exists, to attach it to
one later (issue #21, CTTI method as the paper has it).

Existing exercises are named "Prioritisation"; the one-exercise-per-side constraint gives way
to a name unique among a side's live exercises (and among an organisation's own ones).

Revision ID: b21a0c0e0001
Revises: b21d0c0e0004
Create Date: 2026-12-10 09:00:00.000000

"""
import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision = 'b21a0c0e0001'
down_revision = 'b21d0c0e0004'
branch_labels = None
depends_on = None

LIVE = sa.text('voided_at IS NULL')
OWN_AND_LIVE = sa.text('partnership_id IS NULL AND voided_at IS NULL')


def upgrade():
    with op.batch_alter_table('prioritisation_exercises', schema=None) as batch_op:
        batch_op.add_column(sa.Column('name', sa.String(length=200), nullable=True))
    op.execute("UPDATE prioritisation_exercises SET name = 'Prioritisation'")
    with op.batch_alter_table('prioritisation_exercises', schema=None) as batch_op:
        batch_op.alter_column('name', existing_type=sa.String(length=200), nullable=False)
        batch_op.alter_column('partnership_id', existing_type=sa.Integer(), nullable=True)
        batch_op.drop_constraint('uq_prioritisation_exercises_side', type_='unique')
        batch_op.create_index('uq_prioritisation_exercises_live_name',
                              ['partnership_id', 'side', 'name'], unique=True,
                              sqlite_where=LIVE, postgresql_where=LIVE)
        batch_op.create_index('uq_prioritisation_exercises_own_name',
                              ['organisation_id', 'name'], unique=True,
                              sqlite_where=OWN_AND_LIVE, postgresql_where=OWN_AND_LIVE)


def downgrade():
    # One exercise per partnership side, always of a partnership: refuse to lose any.
    connection = op.get_bind()
    own = connection.execute(sa.text(
        'SELECT COUNT(*) FROM prioritisation_exercises WHERE partnership_id IS NULL')).scalar()
    doubled = connection.execute(sa.text(
        'SELECT COUNT(*) FROM (SELECT partnership_id, side FROM prioritisation_exercises '
        'GROUP BY partnership_id, side HAVING COUNT(*) > 1) AS sides')).scalar()
    if own or doubled:
        raise RuntimeError(
            f'Cannot downgrade: {own} exercise(s) belong to no partnership and {doubled} '
            'partnership side(s) hold several exercises; the older schema keeps one exercise '
            'per partnership side.')
    with op.batch_alter_table('prioritisation_exercises', schema=None) as batch_op:
        batch_op.drop_index('uq_prioritisation_exercises_own_name',
                            sqlite_where=OWN_AND_LIVE, postgresql_where=OWN_AND_LIVE)
        batch_op.drop_index('uq_prioritisation_exercises_live_name',
                            sqlite_where=LIVE, postgresql_where=LIVE)
        batch_op.create_unique_constraint('uq_prioritisation_exercises_side',
                                          ['partnership_id', 'side'])
        batch_op.alter_column('partnership_id', existing_type=sa.Integer(), nullable=False)
        batch_op.drop_column('name')
