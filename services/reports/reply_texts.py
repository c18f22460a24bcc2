"""What the citizen reads back: Vietnamese replies with the case's reference code."""

from shared.events.tips import TipCategory, TipKind, TipPriority

DANGER_ADVICE = "Nếu có người đang gặp nguy hiểm, hãy gọi ngay 113."
FIRE_ADVICE = "Nếu có cháy, nổ, hãy gọi ngay 114."


def received(
    kind: TipKind, category: TipCategory, priority: TipPriority, ward_name: str | None, ref: str
) -> str:
    """The automatic acknowledgement of a new case."""
    police = f"Công an {ward_name}" if ward_name else "Công an"
    what = {
        TipKind.TIP: "tin báo",
        TipKind.HELP: "yêu cầu hỗ trợ",
        TipKind.QUESTION: "câu hỏi",
        TipKind.OTHER: "tin nhắn",
    }[kind]
    lines = [f"{police} đã tiếp nhận {what} của bạn. Mã tiếp nhận: {ref}."]
    if priority == TipPriority.URGENT:
        lines.append(FIRE_ADVICE if category == TipCategory.FIRE else DANGER_ADVICE)
        if category == TipCategory.FIRE:
            lines.append(DANGER_ADVICE)
    if kind == TipKind.QUESTION:
        lines.append("Cán bộ sẽ trả lời bạn trong thời gian sớm nhất.")
    else:
        lines.append(
            "Cảm ơn bạn đã chung tay giữ bình yên cho khu phố. Danh tính của bạn được giữ kín."
        )
    return "\n".join(lines)


def staff_reply(text: str, ref: str) -> str:
    """A staff member's message to the tipster, tagged with the case reference."""
    return f"[{ref}] {text.strip()}"
