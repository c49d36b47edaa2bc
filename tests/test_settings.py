"""Settings: nested sections, overrides by nested name, and every bad value refused up front
with one line naming the field, the value and what is allowed."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from xqglib.config.profiles import PROFILES, load_profile
from xqglib.config.settings import SECTIONS, describe, parse_assignments, validate
from xqglib.core.errors import UserError
from xqglib.core.paths import repo_root


def test_every_profile_is_sound_and_grouped_in_sections():
    for profile in PROFILES.values():
        assert validate(profile) == []
        assert set(profile.to_dict()) == {"name", "description", *SECTIONS}
    cpu = load_profile("cpu")
    assert cpu.retriever.encoder == "me5-small" and cpu.augmentation.alpha == 0.01 and cpu.seed == 313
    text = describe(cpu)
    assert "  [generator]\n" in text and "    converge           True" in text and "    max_passes         2.0" in text


def test_overrides_by_nested_name_in_every_form():
    nested = load_profile("smoke", {"generator": {"steps": 2}, "generation": {"languages": ["ar"]}})
    dotted = load_profile("smoke", '{"generator.steps": 2, "generation.languages": ["ar"]}')
    assert nested == dotted
    assert nested.generator.steps == 2 and nested.generation.languages == ("ar",)
    assert nested.generator.batch_size == PROFILES["smoke"].generator.batch_size  # the rest stays
    # --set: values as JSON where they parse, a comma list for list settings
    cli = load_profile("smoke", parse_assignments(["generator.steps=2", "generation.languages=ar"]), from_text=True)
    assert cli == nested
    two = load_profile("smoke", parse_assignments(["generation.languages=ar,de"]), from_text=True)
    assert two.generation.languages == ("ar", "de")
    retrievers = load_profile("smoke", {"retriever.retrievers": [{"name": "x", "training": "none"}]})
    assert retrievers.retrievers[0].name == "x" and retrievers.sweep_retriever == "x"


BAD = [
    # (overrides, what the one line must say)
    ({"augmentation.alpha": -0.5}, 'augmentation.alpha = -0.5: it is out of range; allowed: a number >= 0 and <= 1'),
    ({"augmentation.alpha": 7}, "augmentation.alpha = 7: it is out of range"),
    ({"augmentation": {"alpha": "high"}}, 'augmentation.alpha = "high": expected a number'),
    ({"generation.languages": "ar"}, 'generation.languages = "ar": expected a list; allowed: a non-empty list, each one of ar,'),
    ({"generation.languages": ["xx"]}, 'generation.languages = ["xx"]: item "xx" is not allowed'),
    ({"generation.languages": []}, "generation.languages = []: the list is empty"),
    ({"data.query_languages": ["ar", "ar"]}, "data.query_languages = [\"ar\", \"ar\"]: repeated item(s) ar"),
    ({"generator.stepz": 3}, "generator.stepz: unknown setting; generator has models, steps,"),
    ({"gen_steps": 3}, "gen_steps: unknown setting; settings are grouped in sections"),
    ({"generator.steps": 0}, "generator.steps = 0: it is out of range; allowed: a whole number >= 1"),
    ({"generator.steps": 2.5}, "generator.steps = 2.5: expected a whole number"),
    ({"evaluation.search_depth": True}, "evaluation.search_depth = true: expected a whole number"),
    ({"generator.lr": 0}, "generator.lr = 0: it is out of range; allowed: a number > 0 and <= 1"),
    ({"generation.vocabulary": "foo"}, 'generation.vocabulary = "foo": it is not allowed; allowed: one of full, data'),
    ({"data.split_articles": [30, 6, 13]}, "data.split_articles = [30, 6, 13]: adds up to 49"),
    ({"data.split_articles": [1, 2]}, "data.split_articles = [1, 2]: expected 3 items, got 2"),
    ({"retriever.retrievers": [{"name": "x", "training": "magic"}]}, "unknown training 'magic'"),
    ({"retriever.retrievers": [{"name": "a b", "training": "none"}]}, "bad name 'a b'"),
    ({"retriever.retrievers": [{"name": "x", "training": "none"}] * 2}, "repeated name(s) x"),
    ({"retriever.retrievers": ["x"]}, "retriever.retrievers = [\"x\"]: expected an object with name, training and label"),
    ({"evaluation.sweep_retriever": "nope"}, 'evaluation.sweep_retriever = "nope": names no retriever'),
    ({"generator.models": ["gpt"]}, "unknown generator 'gpt'"),
    ({"run.bf16": "yes"}, 'run.bf16 = "yes": expected true or false'),
    ({"run": 5}, "run: unknown setting"),
]


@pytest.mark.parametrize("overrides, message", BAD, ids=[json.dumps(o)[:40] for o, _ in BAD])
def test_a_bad_setting_is_one_clear_line(overrides, message):
    with pytest.raises(UserError) as caught:
        load_profile("smoke", overrides)
    text = str(caught.value)
    assert "\n" not in text, text
    assert text.startswith("bad setting: ") and message in text, text


def test_several_bad_settings_are_all_reported():
    with pytest.raises(UserError) as caught:
        load_profile("smoke", {"augmentation.alpha": -1, "generator.steps": "many", "nope.x": 1})
    lines = str(caught.value).splitlines()
    assert lines[0] == "bad settings:" and len(lines) == 4


def test_bad_json_and_bad_set_are_refused():
    with pytest.raises(UserError, match="not valid JSON"):
        load_profile("smoke", "{oops")
    with pytest.raises(UserError, match="must be a JSON object"):
        load_profile("smoke", "[1, 2]")
    with pytest.raises(UserError, match="expected section.field=value"):
        parse_assignments(["generator.steps"])
    with pytest.raises(UserError, match="unknown profile 'gpu'"):
        load_profile("gpu")


def _cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "xqglib", *args], capture_output=True, text=True,
                          cwd=repo_root(), env=dict(os.environ))


@pytest.mark.parametrize("args, message", [
    (["run", "--profile", "nope"], "error: unknown profile 'nope'"),
    (["run", "--profile", "smoke", "--set", "augmentation.alpha=high"], 'error: bad setting: augmentation.alpha = "high"'),
    (["run", "--profile", "smoke", "--overrides", '{"bogus": 1}'], "error: bad setting: bogus: unknown setting"),
    (["run", "--profile", "smoke", "--from", "0"], "error: no stage '0'; stages are 1 (data), 2 (train-generator)"),
    (["run", "--profile", "smoke", "--from", "13"], "error: no stage '13'"),
    (["run", "--profile", "smoke", "--from", "5", "--to", "2"], "error: --from 5 (encode-search) comes after --to 2"),
    (["book", "--profile", "smoke", "--set", "generation.languages=xx"], 'error: bad setting: generation.languages = ["xx"]'),
])
def test_the_command_line_refuses_bad_settings_before_any_work(args, message, tmp_path):
    result = _cli(*args, "--run-dir", str(tmp_path / "run"))
    assert result.returncode == 2, result.stderr
    assert result.stderr.startswith(message), result.stderr
    assert "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "run").exists()  # nothing started


def test_profiles_command_prints_the_sections():
    result = _cli("profiles", "smoke", "--explain")
    assert result.returncode == 0
    assert "  [augmentation]\n    alpha              0.01   # weight of the generated queries" in result.stdout


@pytest.mark.parametrize("env,capped", [({"ATEN_CPU_CAPABILITY": "avx2"}, True),
                                        ({"ONEDNN_MAX_CPU_ISA": "AVX2"}, True),
                                        ({"ONEDNN_MAX_CPU_ISA": "AVX2_VNNI"}, True),
                                        ({"ONEDNN_MAX_CPU_ISA": "AVX512_CORE_BF16"}, False),
                                        ({}, False)])
def test_bf16_is_off_under_an_avx2_cap(monkeypatch, tmp_path, env, capped):
    """The budgets are measured with the instruction set capped at AVX2: there bf16 is emulated,
    so `run.bf16: null` must not pick it even on a CPU with AVX-512 BF16."""
    from xqglib.core import hardware

    for name in ("ATEN_CPU_CAPABILITY", "ONEDNN_MAX_CPU_ISA"):
        monkeypatch.delenv(name, raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    fake = tmp_path / "cpuinfo"
    fake.write_text("flags : avx2 fma avx512f avx512_bf16\n")
    real_path = hardware.Path
    monkeypatch.setattr(hardware, "Path", lambda p: fake if p == "/proc/cpuinfo" else real_path(p))
    assert hardware.cpu_has_bf16() is (not capped)
    assert (hardware.forced_isa() is None) is (not env)
