import copy

import pytest
import yaml

from pickspin.core.errors import ConfigError
from pickspin.core.settings import Settings
from tests.conftest import VALUES


def raw() -> dict:
    return copy.deepcopy(yaml.safe_load(VALUES.read_text())["global"]["pickspin"])


def test_the_chart_values_load_with_the_paper_profiles(settings):
    paper = {"quality": (1.0, 0.1, 0.1), "cost": (0.3, 0.2, 0.8),
             "speed": (0.3, 0.8, 0.2), "balanced": (0.5, 0.3, 0.3)}
    for name, (a, lam, mu) in paper.items():
        w = settings.profile(name).weights
        assert (w.relevance, w.latency, w.cost) == (a, lam, mu)
    assert {s.backend for s in settings.services} == {"vllm", "tgi", "trtllm", "llamacpp"}


def test_bad_config_fails_with_every_problem_listed(tmp_path):
    data = raw()
    data["defaultProfile"] = "thrifty"
    data["services"][0]["concurrency"] = -4
    data["services"][1]["model"] = "gpt-17"
    data["models"][0]["quality"] = {"low": 1.5, "medium": 0.5}
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump(data))
    with pytest.raises(ConfigError) as err:
        Settings.load(path)
    text = "\n".join(err.value.problems)
    assert "services.0.concurrency" in text
    assert "models.0: quality lacks classes ['high']" in text
    assert "models.0: quality values must lie in [0, 1]" in text
    assert len(err.value.problems) == 3


def test_cross_reference_problems_are_listed_together():
    data = raw()
    data["defaultProfile"] = "thrifty"
    data["services"][1]["model"] = "gpt-17"
    data["services"][2]["backend"] = "ollama"
    with pytest.raises(ConfigError) as err:
        Settings.from_mapping(data)
    text = "\n".join(err.value.problems)
    assert "unknown profile 'thrifty'" in text
    assert "services[1].model: unknown model 'gpt-17'" in text
    assert "services[2].backend: unknown backend 'ollama'" in text


def test_unknown_keys_are_refused_not_ignored():
    data = raw()
    data["routing"]["stratgy"] = "random"
    with pytest.raises(ConfigError, match="stratgy"):
        Settings.from_mapping(data)


def test_missing_and_unparsable_files_are_clear_errors(tmp_path):
    with pytest.raises(ConfigError, match="cannot read"):
        Settings.load(tmp_path / "absent.yaml")
    broken = tmp_path / "broken.yaml"
    broken.write_text("global: [unclosed")
    with pytest.raises(ConfigError, match="not valid YAML"):
        Settings.load(broken)
