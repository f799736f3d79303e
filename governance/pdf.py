"""PDFs from trusted templates and plain data: one pure function, a fetcher that fetches nothing.

WeasyPrint is given HTML rendered by Jinja (autoescaped, so user text is text) and a URL fetcher
that serves only `data:` URLs: `file:` paths, remote URLs and every other scheme are refused and
stop the rendering, so a template can never read the server's files or reach the network.

WeasyPrint takes most of a second to import, so it is imported by the first rendering, not by
every process that loads the application.
"""

import functools
import logging
import threading
from collections.abc import Callable, Mapping
from contextlib import contextmanager
from dataclasses import dataclass

from flask import render_template

# WeasyPrint announces each page it lays out on this logger.
PROGRESS_LOGGER = logging.getLogger("weasyprint.progress")


@dataclass(frozen=True)
class PdfOptions:
    """How WeasyPrint writes the PDF (every field is a WeasyPrint option of the same name)."""

    pdf_variant: str | None = None
    pdf_tags: bool = False
    presentational_hints: bool = False
    uncompressed_pdf: bool = False
    optimize_images: bool = False

    def as_weasyprint(self) -> dict:
        return {"pdf_variant": self.pdf_variant, "pdf_tags": self.pdf_tags,
                "presentational_hints": self.presentational_hints,
                "uncompressed_pdf": self.uncompressed_pdf,
                "optimize_images": self.optimize_images}


DEFAULT_OPTIONS = PdfOptions()


class RefusedResource(ValueError):
    """The document asked for a resource other than a data: URL."""


@functools.cache
def _data_only_fetcher_class():
    from weasyprint.urls import URLFetcher

    class DataOnlyFetcher(URLFetcher):
        """Serve `data:` URLs (images and fonts embedded in the page); refuse everything else."""

        def __init__(self):
            super().__init__(allowed_protocols=("data",), allow_redirects=False,
                             fail_on_errors=True, timeout=1)

        def fetch(self, url, headers=None):
            if not url.lower().startswith("data:"):
                raise RefusedResource(f"disallowed protocol: a PDF may only embed data: URLs, "
                                      f"not {url[:80]!r}")
            return super().fetch(url, headers)

    return DataOnlyFetcher


def data_only_fetcher():
    """Return the URL fetcher every PDF is rendered with."""
    return _data_only_fetcher_class()()


@dataclass(frozen=True)
class RenderedPdf:
    content: bytes
    pages: int


def render_html(template: str, context: Mapping) -> str:
    """Render a trusted template with plain data (autoescaped)."""
    return render_template(template, **context)


def html_to_pdf(html: str, options: PdfOptions = DEFAULT_OPTIONS,
                on_page: Callable[[int], None] | None = None) -> RenderedPdf:
    """Lay out the HTML and write the PDF; `on_page(n)` is told each page laid out."""
    from weasyprint import HTML
    from weasyprint.urls import FatalURLFetchingError

    try:
        with _pages_reported_to(on_page):
            document = HTML(string=html, url_fetcher=data_only_fetcher()).render(
                **options.as_weasyprint())
            content = document.write_pdf(**options.as_weasyprint())
    except FatalURLFetchingError as error:
        # WeasyPrint's fatal error is a BaseException: turn it into an ordinary failure.
        raise RefusedResource(str(error.__cause__ or error)) from None
    return RenderedPdf(content, len(document.pages))


def render_pdf(template: str, context: Mapping, options: PdfOptions = DEFAULT_OPTIONS) -> bytes:
    """Return the PDF of a trusted template rendered with plain data."""
    return html_to_pdf(render_html(template, context), options).content


# --- progress: WeasyPrint announces each page it lays out on its progress logger --------------

_listeners_lock = threading.Lock()
_listeners = 0
_saved_logger_state: tuple[int, bool] | None = None


class _PageListener(logging.Handler):
    def __init__(self, on_page: Callable[[int], None]):
        super().__init__(logging.INFO)
        self.thread = threading.get_ident()
        self.on_page = on_page

    def emit(self, record: logging.LogRecord) -> None:
        if record.thread != self.thread or not str(record.msg).startswith(
            "Step 5 - Creating layout - Page"
        ):
            return
        try:
            self.on_page(int(record.args[0]))
        except Exception:  # progress is a nicety; never let it break the rendering
            logging.getLogger(__name__).exception("PDF progress callback failed")


@contextmanager
def _pages_reported_to(on_page: Callable[[int], None] | None):
    global _listeners, _saved_logger_state
    if on_page is None:
        yield
        return
    listener = _PageListener(on_page)
    with _listeners_lock:
        if _listeners == 0:
            _saved_logger_state = (PROGRESS_LOGGER.level, PROGRESS_LOGGER.propagate)
            PROGRESS_LOGGER.setLevel(logging.INFO)
            PROGRESS_LOGGER.propagate = False  # the page-by-page messages are not for the log
        _listeners += 1
        PROGRESS_LOGGER.addHandler(listener)
    try:
        yield
    finally:
        with _listeners_lock:
            PROGRESS_LOGGER.removeHandler(listener)
            _listeners -= 1
            if _listeners == 0 and _saved_logger_state is not None:
                PROGRESS_LOGGER.setLevel(_saved_logger_state[0])
                PROGRESS_LOGGER.propagate = _saved_logger_state[1]
