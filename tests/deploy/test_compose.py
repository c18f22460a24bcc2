"""deploy/compose.yaml and deploy/Dockerfile, checked without a Docker engine.

The compose file is validated against the Compose Specification's JSON schema as vendored by
check-jsonschema (`check_jsonschema/builtin_schemas/vendor/compose-spec.json`, Apache-2.0, from
github.com/compose-spec/compose-spec), then held to the project's rules.
"""

import importlib
import importlib.resources
import inspect
import json
import re
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

from shared.settings import ServiceSettings

REPO = Path(__file__).resolve().parents[2]
DEPLOY = REPO / "deploy"
COMPOSE = yaml.safe_load((DEPLOY / "compose.yaml").read_text())
SERVICES: dict[str, dict[str, Any]] = COMPOSE["services"]
APP_SERVICES = {
    name: spec for name, spec in SERVICES.items() if spec.get("image", "").startswith("binhyen:")
}
SCALABLE = {"ingest": 1, "reports": 2, "broadcast": 4, "analytics": 1}
_INTERPOLATION = re.compile(r"\$\{(?P<name>\w+)(?:(?P<op>:?[-?])(?P<arg>[^}]*))?\}")


def compose_schema() -> dict[str, Any]:
    vendor = importlib.resources.files("check_jsonschema.builtin_schemas.vendor")
    return json.loads((vendor / "compose-spec.json").read_text())  # type: ignore[no-any-return]


def with_defaults(value: str) -> str:
    """Compose interpolation as it resolves with no variable set (`${X:-default}` → default)."""
    return _INTERPOLATION.sub(lambda m: m["arg"] if m["op"] in (":-", "-") else "", value)


def settings_class(module_name: str) -> type[ServiceSettings] | None:
    """The ServiceSettings subclass defined in `<module>.settings`, if that module exists."""
    try:
        module = importlib.import_module(f"{module_name}.settings")
    except ModuleNotFoundError:
        return None
    found = [
        cls
        for _, cls in inspect.getmembers(module, inspect.isclass)
        if issubclass(cls, ServiceSettings) and cls.__module__ == module.__name__
    ]
    assert len(found) == 1, f"{module.__name__} should define exactly one settings class"
    return found[0]


class TestSpecification:
    def test_compose_file_is_valid_against_the_compose_schema(self) -> None:
        validator = jsonschema.Draft202012Validator(compose_schema())
        errors = sorted(validator.iter_errors(COMPOSE), key=lambda e: list(e.path))
        assert not errors, "\n".join(f"{list(e.path)}: {e.message}" for e in errors)

    def test_schema_rejects_a_broken_file(self) -> None:
        broken = {"services": {"x": {"image": "a:1", "healthcheck": {"interval": 5, "bogus": 1}}}}
        validator = jsonschema.Draft202012Validator(compose_schema())
        assert list(validator.iter_errors(broken))


@pytest.mark.parametrize("name", sorted(SERVICES))
class TestEveryService:
    def test_has_a_health_check(self, name: str) -> None:
        check = SERVICES[name].get("healthcheck", {})
        assert check.get("test"), f"{name} has no health check"
        assert not check.get("disable")
        assert check["test"][0] in ("CMD", "CMD-SHELL")

    def test_has_resource_limits(self, name: str) -> None:
        limits = SERVICES[name].get("deploy", {}).get("resources", {}).get("limits", {})
        assert limits.get("cpus"), f"{name} has no cpu limit"
        assert limits.get("memory"), f"{name} has no memory limit"

    def test_has_a_restart_policy(self, name: str) -> None:
        assert SERVICES[name].get("restart") in ("unless-stopped", "always", "on-failure")

    def test_image_is_pinned(self, name: str) -> None:
        image = with_defaults(SERVICES[name]["image"])
        repository, _, tag = image.rpartition(":")
        assert repository, f"{name}: {image} has no tag"
        assert tag != "latest"
        assert "latest" not in image
        assert re.search(r"\d", tag), f"{name}: {image} is not pinned to a version"

    def test_data_volumes_are_named_or_per_replica(self, name: str) -> None:
        for volume in SERVICES[name].get("volumes", []):
            source = volume.split(":")[0] if ":" in volume else None
            if source and not source.startswith("."):
                assert source in COMPOSE["volumes"], f"{name}: volume {source} is not declared"


@pytest.mark.parametrize("name", sorted(APP_SERVICES))
class TestApplicationServices:
    def test_environment_matches_the_settings_class(self, name: str) -> None:
        spec = APP_SERVICES[name]
        module = spec["command"][0]
        settings = settings_class(module)
        if settings is None:
            pytest.skip(f"{module}/settings.py does not exist yet")
        fields = {field.upper() for field in settings.model_fields}
        unknown = sorted(set(spec.get("environment", {})) - fields)
        assert not unknown, f"{name}: {unknown} are not fields of {settings.__name__}"
        required = {f.upper() for f, info in settings.model_fields.items() if info.is_required()}
        assert required <= set(spec.get("environment", {})), f"{name}: missing {required}"

    def test_environment_values_are_accepted_by_the_settings_class(self, name: str) -> None:
        spec = APP_SERVICES[name]
        settings = settings_class(spec["command"][0])
        if settings is None:
            pytest.skip(f"{spec['command'][0]}/settings.py does not exist yet")
        values = {
            key.lower(): with_defaults(str(value)) or "placeholder-secret"
            for key, value in spec.get("environment", {}).items()
        }
        parsed = settings.model_validate(values)
        assert parsed.http_host == "0.0.0.0"
        assert f":{parsed.http_port}/" in " ".join(spec["healthcheck"]["test"])

    def test_runs_its_own_module(self, name: str) -> None:
        module = APP_SERVICES[name]["command"][0]
        assert re.fullmatch(r"(services|tools)\.\w+", module)
        assert (REPO / module.replace(".", "/")).is_dir() or name == "fake-zalo"


class TestClusterTopology:
    def test_three_nats_nodes_with_unique_names_and_own_volumes(self) -> None:
        nodes = {n: s for n, s in SERVICES.items() if s["image"].startswith("nats:")}
        assert len(nodes) == 3
        names = {s["environment"]["NATS_SERVER_NAME"] for s in nodes.values()}
        assert names == set(nodes)
        data = {v for s in nodes.values() for v in s["volumes"] if v.endswith(":/data")}
        assert len(data) == 3

    def test_nats_nodes_shut_down_in_lame_duck_mode(self) -> None:
        for name, spec in SERVICES.items():
            if spec["image"].startswith("nats:"):
                assert spec["stop_signal"] == "SIGUSR2", name

    def test_nats_version_has_the_clustering_fixes(self) -> None:
        for spec in SERVICES.values():
            if spec["image"].startswith("nats:"):
                version = re.match(r"nats:(\d+)\.(\d+)\.(\d+)", spec["image"])
                assert version
                assert tuple(map(int, version.groups())) >= (2, 12, 3)

    def test_services_create_streams_with_three_replicas(self) -> None:
        for name, spec in APP_SERVICES.items():
            if "NATS_URL" in spec["environment"]:
                assert with_defaults(spec["environment"]["NATS_STREAM_REPLICAS"]) == "3", name

    def test_mongo_is_a_three_member_replica_set(self) -> None:
        members = [s for s in SERVICES.values() if s["image"].startswith("mongo:")]
        assert len(members) == 3
        assert all("--replSet" in s["command"] for s in members)
        url = APP_SERVICES["ingest"]["environment"]["MONGODB_URL"]
        assert "replicaSet=rs0" in url
        assert "w=majority" in url

    def test_every_service_has_its_own_nats_user(self) -> None:
        users = {
            name: re.match(r"nats://(\w+):", spec["environment"]["NATS_URL"])
            for name, spec in APP_SERVICES.items()
            if "NATS_URL" in spec["environment"]
        }
        assert all(users.values())
        assert len({m.group(1) for m in users.values() if m}) == len(users)

    def test_fake_zalo_only_in_the_demo_profile(self) -> None:
        assert SERVICES["fake-zalo"]["profiles"] == ["demo"]
        assert all("profiles" not in s for n, s in SERVICES.items() if n != "fake-zalo")


@pytest.mark.parametrize(("name", "replicas"), sorted(SCALABLE.items()))
def test_scalable_service_has_no_fixed_name_or_host_port(name: str, replicas: int) -> None:
    spec = SERVICES[name]
    assert "container_name" not in spec
    for mapping in spec.get("ports", []):
        published = str(mapping).rsplit(":", 1)[0].rsplit(":", 1)[-1]
        first, _, last = published.partition("-")
        assert last, f"{name}: host port {published} is fixed, so --scale would collide"
        assert int(last) - int(first) + 1 >= replicas


class TestDockerfile:
    text = (DEPLOY / "Dockerfile").read_text()

    def test_base_images_are_pinned_to_exact_versions(self) -> None:
        images = re.findall(r"^ARG \w+_IMAGE=(\S+)$", self.text, re.MULTILINE)
        assert images
        for image in images:
            assert re.search(r":\d+\.\d+\.\d+|@sha256:[0-9a-f]{64}", image), image

    def test_final_stage_runs_as_a_non_root_user_without_build_tools(self) -> None:
        final = self.text.split("\nFROM ")[-1]
        user = re.findall(r"^USER (\S+)$", final, re.MULTILINE)
        assert user
        assert user[-1].split(":")[0] not in ("root", "0")
        assert "COPY --from=uv" not in final
        assert "apt-get install" not in final
        assert "pip uninstall" in final

    def test_installs_exactly_the_lock_file_without_dev_tools(self) -> None:
        assert "uv sync --frozen --no-dev" in self.text
        assert "COPY pyproject.toml uv.lock" in self.text

    def test_dashboard_chart_library_matches_the_makefile(self) -> None:
        pinned = re.search(r"^ARG CHART_JS_VERSION=(\S+)$", self.text, re.MULTILINE)
        makefile = re.search(
            r"^CHART_JS_VERSION := (\S+)$", (REPO / "Makefile").read_text(), re.MULTILINE
        )
        assert pinned
        assert makefile
        assert pinned.group(1) == makefile.group(1)

    def test_no_secret_enters_the_build_context(self) -> None:
        ignored = (REPO / ".dockerignore").read_text().splitlines()
        assert ignored[1] == "**"  # everything is excluded, then re-included by name
        assert "**/.env" in ignored
        assert "ENV NATS_" not in self.text
        assert "PASSWORD" not in self.text

    def test_the_image_holds_every_file_the_services_read(self) -> None:
        """Data files the services read by default (units, demo places and world, triage and
        knowledge rules, dashboard assets) are in the build context and copied into the image."""
        from services.analytics.dashboard import STATIC
        from services.reports.triage import RULES_DIR
        from shared.places import DEFAULT_UNITS_FILE, DEMO_CROSSWALK_FILE, DEMO_PLACES_FILE
        from tools.demo_world import WORLD_FILE

        copied = re.findall(r"^COPY (?!--from)(\S+) \./\S+$", self.text, re.MULTILINE)
        admitted = [
            line[1:].rstrip("/")
            for line in (REPO / ".dockerignore").read_text().splitlines()
            if line.startswith("!")
        ]
        read = [DEFAULT_UNITS_FILE, DEMO_CROSSWALK_FILE, DEMO_PLACES_FILE, WORLD_FILE]
        read += [*RULES_DIR.iterdir(), *STATIC.iterdir()]
        for path in read:
            top = path.relative_to(REPO).parts[0]
            assert path.is_file(), path
            assert top in copied, f"{path} is not copied into the image"
            assert top in admitted, f"{path} is outside the build context"


class TestSecrets:
    def test_every_required_variable_is_listed_in_env_example(self) -> None:
        required = set(re.findall(r"\$\{(\w+):\?", (DEPLOY / "compose.yaml").read_text()))
        example = (DEPLOY / "env.example").read_text()
        listed = set(re.findall(r"^(\w+)=", example, re.MULTILINE))
        assert required <= listed, f"missing from deploy/env.example: {required - listed}"

    def test_every_nats_password_reaches_every_node(self) -> None:
        text = (DEPLOY / "nats" / "nats.conf").read_text()
        text += (DEPLOY / "nats" / "accounts.conf").read_text()
        wanted = set(re.findall(r"\$(NATS_\w+)", text))
        for name, spec in SERVICES.items():
            if spec["image"].startswith("nats:"):
                assert wanted <= set(spec["environment"]), (
                    f"{name}: {wanted - set(spec['environment'])}"
                )

    def test_example_holds_no_real_secret(self) -> None:
        for line in (DEPLOY / "env.example").read_text().splitlines():
            name, _, value = line.partition("=")
            if name.endswith(("PASSWORD", "KEY")):
                assert value == "", f"{name} has a value in deploy/env.example"


def test_writable_volumes_belong_to_the_service_user() -> None:
    """read_only containers write only to volumes the image prepared for uid 10001."""
    dockerfile = (DEPLOY / "Dockerfile").read_text()
    for name, spec in APP_SERVICES.items():
        assert spec.get("read_only") is True, name
        for volume in spec.get("volumes", []):
            target = volume.split(":")[-1] if ":" in volume else volume
            assert f"chown 10001:10001 {target}" in dockerfile, f"{name}: {target} not writable"
