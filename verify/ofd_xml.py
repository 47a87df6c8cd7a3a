"""The XML of an uploaded OFD package, read as hostile input in the worker.

defusedxml refuses any DTD, entity declaration or external reference (the billion laughs, XXE);
a tree builder that counts refuses more elements or deeper nesting than the limits as the file
is read, before the tree grows. Refusals use the package reader's vocabulary
(``verify.ofd_package``): a DTD or entity FAILED/FORMAT_FAILURE, a limit
INDETERMINATE/LIMIT_EXCEEDED, XML that is not well-formed INDETERMINATE/MALFORMED.
"""

from __future__ import annotations

from typing import TYPE_CHECKING
from xml.etree.ElementTree import Element, ParseError, TreeBuilder

from verify.ofd_package import forbidden, malformed, over_limit, shown

if TYPE_CHECKING:
    from verify.isolation import Limits


class _BoundedBuilder(TreeBuilder):
    """A tree builder that refuses a document past the element count or the nesting depth
    while it is being read, before the tree grows."""

    def __init__(self, name: str, max_elements: int, max_depth: int) -> None:
        super().__init__()
        self._name, self._max_elements, self._max_depth = name, max_elements, max_depth
        self._elements = self._depth = 0

    def start(self, tag: str, attrs: dict[str, str]) -> Element:
        self._elements += 1
        self._depth += 1
        if self._elements > self._max_elements:
            raise over_limit(
                f"XML元素过多 / {shown(self._name)}: more than {self._max_elements} elements"
            )
        if self._depth > self._max_depth:
            raise over_limit(f"XML嵌套过深 / {shown(self._name)}: deeper than {self._max_depth}")
        return super().start(tag, attrs)

    def end(self, tag: str) -> Element:
        self._depth -= 1
        return super().end(tag)


def parse_xml(name: str, data: bytes, limits: Limits) -> Element:
    """One XML file of the package: no DTD, no entities, no external references; bounded in
    size, element count and depth; raises ``Refused``."""
    from defusedxml import DefusedXmlException
    from defusedxml.ElementTree import DefusedXMLParser

    if len(data) > limits.max_xml_bytes:
        raise over_limit(f"XML过大 / {shown(name)}: {len(data)} bytes > {limits.max_xml_bytes}")
    builder = _BoundedBuilder(name, limits.max_xml_elements, limits.max_xml_depth)
    parser = DefusedXMLParser(
        target=builder, forbid_dtd=True, forbid_entities=True, forbid_external=True
    )
    try:
        parser.feed(data)
        root: Element = parser.close()
    except DefusedXmlException as exc:
        raise forbidden(
            f"XML含DTD或实体声明 / {shown(name)}: {type(exc).__name__}; a licence's XML has none"
        ) from None
    except ParseError as exc:
        raise malformed(f"XML格式错误 / {shown(name)}: not well-formed ({exc})") from None
    return root
