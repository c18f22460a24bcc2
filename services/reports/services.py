"""The collaborators of one running reports service, made once by `app.build`."""

from dataclasses import dataclass

from services.reports.desk import Desk, Messenger
from services.reports.intake import Intake
from services.reports.live import LiveFeed
from services.reports.publisher import TipPublisher
from services.reports.settings import ReportsSettings
from services.reports.store import ReportsStore
from shared.places import Gazetteer


@dataclass(frozen=True)
class Reports:
    settings: ReportsSettings
    store: ReportsStore
    gazetteer: Gazetteer
    intake: Intake
    publisher: TipPublisher
    desk: Desk
    live: LiveFeed
    messenger: Messenger | None
