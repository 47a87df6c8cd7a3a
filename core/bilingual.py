"""The English half of a "中文 / English" text, marked for screen readers.

Messages reach the pages as one bilingual string (a verification's reason, a status label, a
form error), written Chinese first. On a ``lang="zh-CN"`` page a screen reader would read the
English half with a Chinese voice, which is unintelligible (WCAG 3.1.2, language of parts); the
filter puts that half in ``<span lang="en">``. Both halves are escaped: a message can carry text
from a request (an identifier, a file name), and the filter must never turn it into markup.
"""

from __future__ import annotations

from markupsafe import Markup, escape

SEPARATOR = "/ "  # "有效 / valid", and "按部门（本月）/ by department" after a full-width bracket
PARTS = " · "  # "签发 / issued · 按月 / by month": each part has its own two halves


def _one(part: str) -> Markup:
    chinese, found, english = part.rpartition(SEPARATOR)
    if not found or not english or not chinese:
        return escape(part)
    return Markup('{}{}<span lang="en">{}</span>').format(chinese, SEPARATOR, english)


def bilingual(text: object) -> Markup:
    """``中文 / English`` → ``中文 / <span lang="en">English</span>``, for each ``·`` part; other
    text escaped as is. The last separator of a part splits it, so a Chinese half that itself
    holds a slash stays whole."""
    value = "" if text is None else str(text)
    return escape(PARTS).join(_one(part) for part in value.split(PARTS))
