"""Early warning's parts: the rules' thresholds from settings, the keyed verification source and
the supervisors' alert desk. The rules are registered on the audit log by ``foundation``."""

from __future__ import annotations

from api.ops.secrets import domain_secret
from api.settings import Settings
from core.errors import InvalidInput
from supervision.alerts import Thresholds
from supervision.sources import SourceKeyer

SOURCE_KEY = "verification-source-key"


def alert_thresholds(settings: Settings) -> Thresholds:
    """The rules' thresholds; working hours that end before they start are refused at start
    (every issuance would be off-hours), naming both settings."""
    if settings.alert_work_start_hour >= settings.alert_work_end_hour:
        raise InvalidInput(
            "工作时间须先开始后结束 / ELICENCE_ALERT_WORK_START_HOUR"
            f" ({settings.alert_work_start_hour}) must be before ELICENCE_ALERT_WORK_END_HOUR"
            f" ({settings.alert_work_end_hour})",
            field="alert_work_start_hour",
        )
    return Thresholds(
        licence_failures=settings.alert_licence_failures,
        source_failures=settings.alert_source_failures,
        failure_window_minutes=settings.alert_failure_window_minutes,
        burst_factor=settings.alert_burst_factor,
        burst_floor=settings.alert_burst_floor,
        work_start_hour=settings.alert_work_start_hour,
        work_end_hour=settings.alert_work_end_hour,
        work_weekends=settings.alert_work_weekends,
        seal_race_minutes=settings.alert_seal_race_minutes,
    )


def build_source_keyer(settings: Settings) -> SourceKeyer:
    """The domain's source key, made in the data directory's secrets on first start."""
    return SourceKeyer(domain_secret(settings, SOURCE_KEY))
