"""The 3 × 3 priority matrix drawn as SVG on the server (no JavaScript, no style attributes)."""

from xml.sax.saxutils import escape

from ..vocabulary import RATING_LEVELS
from .services import LEVELS_HIGH_FIRST, LEVELS_LOW_FIRST, MatrixCell, quadrant

CELL_WIDTH = 230
CELL_HEIGHT = 150
LEFT = 110  # room for the benefit labels
TOP = 64  # room for the title and investment labels
LINE = 15
MAX_CHARS = 34

# Fills only tint the cells: each quadrant is also named in words inside its cell.
QUADRANT_FILLS = {
    "pursue": "#d1e7dd",
    "worth_if_resourced": "#cfe2ff",
    "valuable_to_partner": "#e9ecef",
    "unlikely_worth": "#f8d7da",
}
QUADRANT_SHORT = {
    "pursue": "PURSUE",
    "worth_if_resourced": "WORTH IT IF RESOURCED",
    "valuable_to_partner": "MAY SUIT A PARTNER",
    "unlikely_worth": "UNLIKELY WORTH IT",
}


def _shorten(text: str, limit: int = MAX_CHARS) -> str:
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


def _text(x: float, y: float, content: str, size: int = 11, weight: str = "normal",
          anchor: str = "start", fill: str = "#212529") -> str:
    return (f'<text x="{x:g}" y="{y:g}" font-family="Helvetica, Arial, sans-serif" '
            f'font-size="{size}" font-weight="{weight}" text-anchor="{anchor}" '
            f'fill="{fill}">{escape(content)}</text>')


def matrix_svg(rows: list[list[MatrixCell]], title: str) -> str:
    """Return a standalone SVG document of the matrix (rows high → low benefit)."""
    width = LEFT + 3 * CELL_WIDTH + 10
    height = TOP + 3 * CELL_HEIGHT + 40
    placed = sum(len(cell.items) for row in rows for cell in row)
    description = (f"{placed} activities placed by benefit (rows, high at the top) and "
                   "investment (columns, low on the left). "
                   + " ".join(
                       f"Benefit {cell.benefit}, investment {cell.investment}: "
                       + (", ".join(_label(item) for item in cell.items) or "none") + "."
                       for row in rows for cell in row))
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" role="img" aria-labelledby="matrix-title '
        f'matrix-desc">',
        f'<title id="matrix-title">{escape(title)}</title>',
        f'<desc id="matrix-desc">{escape(description)}</desc>',
        f'<rect x="0" y="0" width="{width}" height="{height}" fill="#ffffff"/>',
        _text(LEFT, 20, _shorten(title, 90), size=14, weight="bold"),
        _text(LEFT + 1.5 * CELL_WIDTH, TOP - 26, "Investment →", size=12, weight="bold",
              anchor="middle"),
    ]
    for column, investment in enumerate(LEVELS_LOW_FIRST):
        parts.append(_text(LEFT + (column + 0.5) * CELL_WIDTH, TOP - 8,
                           RATING_LEVELS[investment], size=12, anchor="middle"))
    parts.append(_text(12, TOP - 8, "Benefit ↓", size=12, weight="bold"))
    for row_index, row in enumerate(rows):
        y = TOP + row_index * CELL_HEIGHT
        parts.append(_text(12, y + CELL_HEIGHT / 2, RATING_LEVELS[LEVELS_HIGH_FIRST[row_index]],
                           size=12))
        for column, cell in enumerate(row):
            parts.extend(_cell(LEFT + column * CELL_WIDTH, y, cell))
    parts.append(_text(LEFT, TOP + 3 * CELL_HEIGHT + 24,
                       "Corner cells name their quadrant; the cells between are for discussion.",
                       size=10, fill="#495057"))
    parts.append("</svg>")
    return "\n".join(parts)


def _label(item) -> str:
    rating, activity = item
    return f"{rating.activity_code} {activity.name if activity else ''}".strip()


def _cell(x: float, y: float, cell: MatrixCell) -> list[str]:
    named = quadrant(cell.benefit, cell.investment)
    fill = QUADRANT_FILLS[named[0]] if named else "#ffffff"
    parts = [f'<rect x="{x:g}" y="{y:g}" width="{CELL_WIDTH}" height="{CELL_HEIGHT}" '
             f'fill="{fill}" stroke="#6c757d" stroke-width="1"/>']
    line_y = y + 16
    if named:
        parts.append(_text(x + 6, line_y, QUADRANT_SHORT[named[0]], size=10, weight="bold",
                           fill="#343a40"))
        line_y += LINE
    room = int((y + CELL_HEIGHT - line_y) // LINE)
    shown = cell.items if len(cell.items) <= room else cell.items[: max(room - 1, 0)]
    for item in shown:
        parts.append(_text(x + 6, line_y, _shorten(_label(item))))
        line_y += LINE
    hidden = len(cell.items) - len(shown)
    if hidden:
        parts.append(_text(x + 6, line_y, f"+ {hidden} more (see the table)", size=10,
                           weight="bold"))
    return parts
