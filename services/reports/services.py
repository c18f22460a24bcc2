"""The collaborators of one running reports service, built once in the app's lifespan."""

from dataclasses import dataclass

from services.reports.desk import Desk, Messenger
from services.reports.hub import Hub
from services.reports.intake import Intake
from services.reports.publisher import TipPublisher
from services.reports.settings import ReportsSettings
from services.reports.store import ReportsStore
from shared.places import Gazetteer


@dataclass
class Reports:
    settings: ReportsSettings
    store: ReportsStore
    gazetteer: Gazetteer
    intake: Intake
    publisher: TipPublisher
    desk: Desk
    hub: Hub
    messenger: Messenger | None
