"""Server-side SVG charts of the compliance dashboard (pygal): plain bytes, reusable in PDFs.

pygal is imported by the first chart drawn, not by every process that loads the application.
"""

import functools

from ..vocabulary import FLAG_STATES


@functools.cache
def _common() -> dict:
    """The options every chart shares."""
    from pygal.style import Style

    style = Style(
        background="white",
        plot_background="white",
        foreground="#212529",
        foreground_strong="#212529",
        foreground_subtle="#6c757d",
        font_family="system-ui, -apple-system, 'Segoe UI', Roboto, 'Helvetica Neue', Arial, "
                    "sans-serif",
        # Colour-blind-safe (Okabe–Ito); the table beside each chart carries the same numbers.
        colors=("#0072B2", "#E69F00", "#009E73", "#CC79A7", "#56B4E9", "#D55E00", "#F0E442"),
        title_font_size=16,
        label_font_size=12,
        major_label_font_size=12,
        legend_font_size=12,
        value_font_size=12,
    )
    return {"style": style, "js": [], "width": 720, "disable_xml_declaration": False,
            "legend_at_bottom": True, "truncate_label": -1}


def adherence_chart(rows, title: str) -> bytes:
    """Horizontal bars: per dimension, the share (%) of interactions with no open flag."""
    import pygal

    chart = pygal.HorizontalBar(**_common(), height=360, title=title, range=(0, 100),
                                print_values=True, show_legend=False,
                                value_formatter=lambda v: f"{v:.0f} %")
    chart.x_labels = [row.label for row in rows]
    chart.add("Interactions without an open flag (%)",
              [None if row.share is None else round(row.share * 100, 1) for row in rows])
    return chart.render()


def flags_over_time_chart(series: list[tuple[str, dict[str, int]]], title: str) -> bytes:
    """Stacked bars: flags on each month's interactions, by state."""
    import pygal

    highest = max((sum(counts.values()) for _month, counts in series), default=0)
    step = max(1, -(-highest // 10))
    chart = pygal.StackedBar(**_common(), height=360, title=title, x_label_rotation=30,
                             no_data_text="No flags in this period",
                             y_labels=list(range(0, highest + step + 1, step)))
    chart.x_labels = [month for month, _counts in series]
    for state, label in FLAG_STATES.items():
        chart.add(label, [counts.get(state, 0) for _month, counts in series])
    return chart.render()
