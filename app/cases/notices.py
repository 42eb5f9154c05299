"""What the applicant is told at each change of their application (a subscribe message through
the outbox, topic `application_status`, once per status)."""
from __future__ import annotations

from app.cases.models import ASSISTANCE_TYPES, Application
from app.notifications.service import notify_donor

_HINTS = {"received": "申请已受理，工作人员将上门核实",
          "visiting": "工作人员已接手，将上门入户核实",
          "reviewing": "核实已完成，正在审核",
          "refused": "申请未获批准，可查看原因"}


def tell_applicant(application: Application) -> None:
    status = application.status
    hint = _HINTS.get(status)
    if status == "approved":
        hint = f"已批准：{ASSISTANCE_TYPES.get(application.assistance_type, '')}"
    notify_donor(application.user_id, "application_status",
                 {"application_id": application.id, "status": status, "hint": hint},
                 dedupe_key=f"application:{application.id}:{status}")
