"""Buckets are Vietnam hours and days (UTC+7), whatever the input's time zone."""

from datetime import UTC, datetime, timedelta, timezone

from services.analytics.buckets import Grain, bucket_label, bucket_labels, bucket_start, label_start
from services.analytics.increments import Increment, combine


class TestVietnamDayBoundary:
    def test_16_59_utc_is_the_last_hour_of_the_vietnam_day(self) -> None:
        moment = datetime(2026, 11, 28, 16, 59, 59, tzinfo=UTC)  # 23:59:59 in Hà Nội
        assert bucket_label(moment, Grain.DAY) == "2026-11-28"
        assert bucket_label(moment, Grain.HOUR) == "2026-11-28T23"

    def test_17_00_utc_starts_the_next_vietnam_day(self) -> None:
        moment = datetime(2026, 11, 28, 17, 0, tzinfo=UTC)  # 00:00 on the 29th in Hà Nội
        assert bucket_label(moment, Grain.DAY) == "2026-11-29"
        assert bucket_label(moment, Grain.HOUR) == "2026-11-29T00"

    def test_a_utc_midnight_event_is_7_in_the_morning(self) -> None:
        assert bucket_labels(datetime(2026, 1, 1, 0, 0, tzinfo=UTC)) == (
            "2026-01-01T07",
            "2026-01-01",
        )

    def test_other_time_zones_and_naive_utc_agree(self) -> None:
        paris = timezone(timedelta(hours=1))
        aware = datetime(2026, 11, 28, 18, 30, tzinfo=paris)  # 17:30 UTC
        naive = datetime(2026, 11, 28, 17, 30)
        for moment in (aware, naive):
            assert bucket_labels(moment) == ("2026-11-29T00", "2026-11-29")

    def test_fast_labels_match_the_reference_for_every_hour_of_a_year(self) -> None:
        start = datetime(2026, 1, 1, tzinfo=UTC)
        for hours in range(0, 365 * 24, 7):
            moment = start + timedelta(hours=hours, minutes=59)
            assert bucket_labels(moment) == (
                bucket_label(moment, Grain.HOUR),
                bucket_label(moment, Grain.DAY),
            )

    def test_bucket_start_and_label_round_trip(self) -> None:
        moment = datetime(2026, 11, 28, 17, 45, tzinfo=UTC)
        start = bucket_start(moment, Grain.HOUR)
        assert start.utcoffset() == timedelta(hours=7)
        assert label_start(bucket_label(moment, Grain.HOUR)) == start


class TestCombine:
    def test_events_either_side_of_midnight_land_in_two_days(self) -> None:
        before = Increment("followers", "follow", datetime(2026, 11, 28, 16, 59, tzinfo=UTC))
        after = Increment("followers", "follow", datetime(2026, 11, 28, 17, 1, tzinfo=UTC))
        ops = {op.key: dict(op.inc) for op in combine([before, after, after])}
        assert ops == {
            "day|2026-11-28": {"c.followers._.follow": 1},
            "day|2026-11-29": {"c.followers._.follow": 2},
            "hour|2026-11-28T23": {"c.followers._.follow": 1},
            "hour|2026-11-29T00": {"c.followers._.follow": 2},
        }

    def test_ops_round_trip_through_the_journal_form(self) -> None:
        item = Increment(
            "zalo_events", "n", datetime(2026, 11, 28, 1, tzinfo=UTC), (("kind", "follow"),)
        )
        for op in combine([item]):
            assert type(op).from_document(op.to_document()) == op
