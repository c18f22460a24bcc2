"""deploy/observability: alert rules (promtool), Grafana dashboards, Prometheus' scrape targets.

promtool is the one `make install` builds (deploy/local/install-promtool.sh), of the Prometheus
release compose runs. The dashboards' queries are checked by promtool too (each becomes a
recording rule of a scratch rules file), and every `binhyen_…` metric they or the alerts name
must be one the services register.
"""

import json
import re
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from services.analytics import telemetry as analytics_metrics
from services.broadcast import metrics as broadcast_metrics
from services.ingest import metrics as ingest_metrics
from services.reports import metrics as reports_metrics
from shared import metrics
from shared.telemetry import Instrumented, MongoCommands, broker_middlewares
from shared.zalo.telemetry import ZaloTelemetry
from tests.deploy.test_compose import APP_SERVICES, COMPOSE, DEPLOY, REPO, SERVICES

OBSERVABILITY = DEPLOY / "observability"
PROMTOOL = REPO / ".local" / "bin" / "promtool"
DASHBOARDS = sorted((OBSERVABILITY / "grafana" / "dashboards").glob("*.json"))
RULES = yaml.safe_load((OBSERVABILITY / "alerts.yml").read_text())
ALERTS = [rule for group in RULES["groups"] for rule in group["rules"]]
# Metric names in a PromQL expression: `binhyen_…` literally, or a `__name__=~` pattern.
_NAME = re.compile(r"\bbinhyen_[a-z0-9_]+")
_PATTERN = re.compile(r'__name__=~"([^"]+)"')
_SERVICES = ("ingest", "reports", "broadcast", "analytics")
# Imported for what they register: each service's own metrics.
_SERVICE_METRICS = (ingest_metrics, reports_metrics, broadcast_metrics, analytics_metrics)


def promtool(*args: str, cwd: Path = OBSERVABILITY) -> subprocess.CompletedProcess[str]:
    assert PROMTOOL.exists(), f"{PROMTOOL} is missing: run `make install`"
    return subprocess.run(
        [str(PROMTOOL), *args], cwd=cwd, capture_output=True, text=True, timeout=120
    )


def registered_names() -> set[str]:
    """Every sample name the services expose (each service's own metrics, and the shared
    components' under each service's name)."""
    for service in _SERVICES:
        ZaloTelemetry(service)
        MongoCommands(service)
        Instrumented(lambda *_: None, service)  # type: ignore[arg-type, return-value]
        metrics.watch_consumers(service, None, [])()  # type: ignore[arg-type]
        broker_middlewares(service)
    names: set[str] = set()
    for metric in metrics._metrics.values():
        for family in metric.describe():
            names.add(family.name)
            names |= {family.name + suffix for suffix in ("_total", "_bucket", "_sum", "_count")}
    for service in _SERVICES:  # FastStream's middleware registers its metrics on first use
        prefix = metrics.metric_name(service, "")
        names |= {
            prefix + "received_processed_messages_total",
            prefix + "received_processed_messages_duration_seconds_bucket",
        }
    return names


def named_metrics(expr: str) -> tuple[set[str], list[str]]:
    without_patterns = _PATTERN.sub("", expr)
    return set(_NAME.findall(without_patterns)), _PATTERN.findall(expr)


def check_names(expr: str, known: set[str]) -> None:
    names, patterns = named_metrics(expr)
    assert names <= known, f"unknown metrics {names - known} in {expr}"
    for pattern in patterns:
        assert any(re.fullmatch(pattern, n) for n in known), f"{pattern} matches no metric"


class TestAlertRules:
    def test_rules_are_valid(self) -> None:
        result = promtool("check", "rules", "alerts.yml")
        assert result.returncode == 0, result.stdout + result.stderr

    def test_unit_tests_pass(self) -> None:
        result = promtool("test", "rules", "alerts.test.yml")
        assert result.returncode == 0, result.stdout + result.stderr

    def test_every_rule_has_a_unit_test_that_fires_it(self) -> None:
        tests = yaml.safe_load((OBSERVABILITY / "alerts.test.yml").read_text())["tests"]
        fired = {
            case["alertname"]
            for test in tests
            for case in test.get("alert_rule_test", [])
            if case.get("exp_alerts")
        }
        assert fired == {rule["alert"] for rule in ALERTS}

    def test_unit_tests_catch_a_changed_threshold(self, tmp_path: Path) -> None:
        """The unit tests can fail: with one threshold moved, promtool reports it."""
        text = (OBSERVABILITY / "alerts.yml").read_text()
        (tmp_path / "alerts.yml").write_text(text.replace("> 0.9", "> 0.99"))
        (tmp_path / "alerts.test.yml").write_text((OBSERVABILITY / "alerts.test.yml").read_text())
        result = promtool("test", "rules", "alerts.test.yml", cwd=tmp_path)
        assert result.returncode != 0
        assert "ZaloQuotaAbove90Percent" in result.stdout + result.stderr

    @pytest.mark.parametrize("rule", ALERTS, ids=lambda r: r["alert"])
    def test_rule_names_registered_metrics_and_says_what_it_means(
        self, rule: dict[str, Any]
    ) -> None:
        check_names(rule["expr"], registered_names())
        assert rule["labels"]["severity"] in ("page", "ticket")
        assert rule["annotations"]["summary"]


@pytest.mark.parametrize("path", DASHBOARDS, ids=lambda p: p.stem)
class TestDashboards:
    def test_is_a_provisionable_dashboard(self, path: Path) -> None:
        board = json.loads(path.read_text())
        assert re.fullmatch(r"binhyen-[a-z-]+", board["uid"])
        assert board["title"].startswith("binhyen · ")
        assert isinstance(board["schemaVersion"], int)
        panels = board["panels"]
        assert panels
        assert len({p["id"] for p in panels}) == len(panels)
        for panel in panels:
            assert panel["type"] in ("timeseries", "stat", "gauge", "table", "bargauge")
            assert panel["title"]
            grid = panel["gridPos"]
            assert grid["x"] >= 0
            assert grid["x"] + grid["w"] <= 24
            assert panel["targets"]
            for target in panel["targets"]:
                assert target["datasource"]["uid"] in provisioned_datasources()
                assert target["expr"]

    def test_queries_are_promql_of_registered_metrics(self, path: Path, tmp_path: Path) -> None:
        board = json.loads(path.read_text())
        exprs = [t["expr"] for p in board["panels"] for t in p["targets"]]
        known = registered_names()
        for expr in exprs:
            check_names(expr, known)
        rules = {
            "groups": [
                {
                    "name": path.stem,
                    "rules": [{"record": f"panel:{n}", "expr": e} for n, e in enumerate(exprs)],
                }
            ]
        }
        (tmp_path / "panels.yml").write_text(yaml.safe_dump(rules))
        result = promtool("check", "rules", "panels.yml", cwd=tmp_path)
        assert result.returncode == 0, result.stdout + result.stderr


def test_the_five_dashboards_of_the_issue_exist() -> None:
    titles = {json.loads(p.read_text())["title"] for p in DASHBOARDS}
    for words in ("Webhook", "Tip flow", "Broadcast", "Consumer lag", "MongoDB and NATS"):
        assert any(words in title for title in titles), words


def provisioned_datasources() -> set[str]:
    path = OBSERVABILITY / "grafana" / "provisioning" / "datasources" / "datasources.yaml"
    return {d["uid"] for d in yaml.safe_load(path.read_text())["datasources"]}


class TestCompose:
    def test_observability_services_are_there(self) -> None:
        wanted = {"prometheus", "grafana", "otel-collector", "jaeger"}
        assert wanted <= set(SERVICES)
        assert {n for n in SERVICES if n.startswith("nats-exporter-")} == {
            f"nats-exporter-{i}" for i in (1, 2, 3)
        }

    def test_no_default_passwords(self) -> None:
        """A secret-like variable is required (`${X:?…}`), never given a default or a value."""
        secret = re.compile(r"PASSWORD|SECRET|TOKEN$|_KEY$")  # not STAFF_TOKENS_FILE: a path
        for name, spec in SERVICES.items():
            for key, value in (spec.get("environment") or {}).items():
                if secret.search(key) and key != "GF_SECURITY_ADMIN_USER":
                    assert re.fullmatch(r"\$\{\w+:\?[^}]+\}", str(value)), f"{name}: {key}"

    def test_grafana_has_no_anonymous_access_and_provisioned_dashboards(self) -> None:
        env = SERVICES["grafana"]["environment"]
        assert env["GF_AUTH_ANONYMOUS_ENABLED"] == "false"
        assert env["GF_USERS_ALLOW_SIGN_UP"] == "false"
        mounts = " ".join(SERVICES["grafana"]["volumes"])
        assert "./observability/grafana/dashboards:" in mounts
        assert "./observability/grafana/provisioning:" in mounts

    def test_mounted_files_exist(self) -> None:
        for spec in SERVICES.values():
            for volume in spec.get("volumes", []):
                source = str(volume).split(":")[0]
                if source.startswith("./"):
                    assert (DEPLOY / source).exists(), source

    def test_host_ports_are_loopback_only(self) -> None:
        for name, spec in SERVICES.items():
            for port in spec.get("ports", []):
                assert str(port).startswith("127.0.0.1:"), f"{name}: {port}"

    def test_every_service_exports_traces_to_the_collector(self) -> None:
        for name, spec in APP_SERVICES.items():
            if name == "fake-zalo":
                continue
            assert spec["environment"]["OTEL_EXPORTER_OTLP_ENDPOINT"] == (
                "http://otel-collector:4318"
            ), name

    def test_prometheus_scrapes_every_replica_of_every_service_and_nats(self) -> None:
        config = yaml.safe_load((OBSERVABILITY / "prometheus.yml").read_text())
        jobs = {job["job_name"]: job for job in config["scrape_configs"]}
        for name, spec in APP_SERVICES.items():
            if name == "fake-zalo":
                continue
            [sd] = jobs[name]["dns_sd_configs"]  # every replica: one address each
            assert sd["names"] == [name]
            assert str(sd["port"]) == spec["environment"]["HTTP_PORT"]
        nats_targets = jobs["nats"]["static_configs"][0]["targets"]
        assert {t.split(":")[0] for t in nats_targets} == {
            n for n in SERVICES if n.startswith("nats-exporter-")
        }
        assert config["rule_files"] == ["/etc/prometheus/alerts.yml"]

    def test_prometheus_image_matches_the_promtool_the_tests_run(self) -> None:
        tag = SERVICES["prometheus"]["image"].split(":")[1]  # v3.16.0 = module v0.316.0
        script = (DEPLOY / "local" / "install-promtool.sh").read_text()
        [module] = re.findall(r'module_version="v0\.(\d+)\.(\d+)"', script)
        major_minor = re.fullmatch(r"v3\.(\d+)\.(\d+)", tag)
        assert major_minor
        assert (f"3{int(major_minor[1]):02d}", major_minor[2]) == module
        assert "volumes" in COMPOSE
