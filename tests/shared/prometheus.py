"""Reading a `/metrics` page (the Prometheus text format) in tests."""

from typing import Any

from prometheus_client.parser import text_string_to_metric_families


def sample(text: str, name: str, **labels: str) -> float:
    """The value of sample `name` whose labels include `labels` (summed if several match);
    0 when there is none, as for a counter that has not counted yet."""
    total = 0.0
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            if s.name == name and all(s.labels.get(k) == v for k, v in labels.items()):
                total += s.value
    return total


async def scrape(http: Any) -> str:
    """`GET /metrics` through an httpx client."""
    response = await http.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    return str(response.text)
