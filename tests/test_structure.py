"""The library's shape: no import cycles, stage running apart from analysis, and a stage table that
agrees with the notebooks."""

from __future__ import annotations

import dataclasses

import ast
import json
from pathlib import Path

import pytest

from xqglib.pipeline import stages as S
from xqglib.core.paths import repo_root
from xqglib.config.profiles import PROFILES

PACKAGE = repo_root() / "xqglib"


def imports_of(module: Path) -> set[str]:
    """The xqglib modules a module imports, at any depth of its code (lazy imports count too)."""
    out = set()
    for node in ast.walk(ast.parse(module.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.level == 1:
            if node.module:
                out.add(node.module.split(".")[0])
            else:
                out.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and (node.module or "").startswith("xqglib."):
            out.add(node.module.split(".")[1])
    return out


def graph() -> dict[str, set[str]]:
    return {p.stem: imports_of(p) for p in PACKAGE.glob("*.py") if p.stem not in ("__init__", "__main__")}


def find_cycle(edges: dict[str, set[str]]) -> list[str] | None:
    state: dict[str, int] = {}
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for nxt in sorted(edges.get(node, ())):
            if state.get(nxt) == 1:
                return path[path.index(nxt):] + [nxt]
            if nxt not in state and (found := visit(nxt)):
                return found
        path.pop()
        state[node] = 2
        return None

    for node in sorted(edges):
        if node not in state and (found := visit(node)):
            return found
    return None


def test_the_cycle_finder_finds_cycles():
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set(), "c": {"a", "b"}}) is None


def test_no_import_cycle_in_xqglib():
    edges = graph()
    assert {"stages", "settings", "experiments", "evaluation", "analysis", "significance"} <= set(edges)
    assert find_cycle(edges) is None, find_cycle(edges)


def test_running_and_analysis_live_apart():
    edges = graph()
    running = {"pipeline", "runner", "stages"}
    analysing = {"analysis", "significance", "reporting"}
    for module in analysing | {"evaluation", "evaluation_rq2", "findings"}:
        assert not edges[module] & running, (module, edges[module] & running)
    for module in running:
        assert not edges[module] & (analysing | {"evaluation"}), (module, edges[module])
    # building a model and loading one are separate: the builder never loads through the registry
    assert "models" not in edges["model_builds"]
    assert not (PACKAGE / "statistics.py").exists()  # would shadow the standard library's module


def test_every_stage_has_its_notebook_which_opens_and_finishes_it():
    for stage in S.STAGES:
        path = repo_root() / "notebooks" / f"{stage.notebook}.ipynb"
        cells = json.loads(path.read_text(encoding="utf-8"))["cells"]
        code = "\n".join("".join(c["source"]) for c in cells if c["cell_type"] == "code")
        assert f"stage={stage.name!r}" in code, stage.notebook
        assert code.rstrip().endswith(f"P.finish_stage(cfg, rd, {stage.name!r})"), stage.notebook
        assert any("parameters" in c.get("metadata", {}).get("tags", []) for c in cells)
        assert all(not c.get("outputs") for c in cells if c["cell_type"] == "code")  # committed clean


@pytest.mark.parametrize("profile", sorted(PROFILES))
def test_stage_templates_expand_for_every_profile(profile):
    cfg = PROFILES[profile]
    for stage in S.STAGES:
        assert S.outputs(stage, cfg)
        assert all("{" not in p for p in S.outputs(stage, cfg) + S.inputs(stage, cfg))
        # every setting a stage names exists
        assert all(cfg.select([path]) for path in stage.settings), stage.name


def test_a_stage_fingerprint_covers_its_own_and_earlier_settings_only():
    cfg = PROFILES["smoke"]
    alpha = PROFILES["smoke"].__class__(**{**cfg.__dict__, "augmentation":
                                           type(cfg.augmentation)(alpha=0.5)})
    changed = [s.name for s in S.STAGES if S.fingerprint(cfg, s) != S.fingerprint(alpha, s)]
    assert changed == ["encode-search", "evaluate", "train-contrastive", "encode-rq2", "evaluate-rq2",
                       "rq3-train", "rq3-encode", "rq3-evaluate"]
    # the second research question's settings leave the first question's stages as they are (the third
    # question's stages come after them, so they cover them)
    weight = cfg.__class__(**{**cfg.__dict__, "contrastive": type(cfg.contrastive)(align_weight=0.5)})
    assert [s.number for s in S.STAGES if S.fingerprint(cfg, s) != S.fingerprint(weight, s)] == [7, 8, 9, 10, 11, 12]
    pool = cfg.__class__(**{**cfg.__dict__, "xquadr": type(cfg.xquadr)(k=10)})
    assert [s.number for s in S.STAGES if S.fingerprint(cfg, s) != S.fingerprint(pool, s)] == [8, 9, 10, 11, 12]
    # the third question's: each where it is first used, so the reader's sample reruns stage 12 only
    for change, stages in ((dict(reader_questions=2), [12]), (dict(text_max_len=80), [11, 12]),
                           (dict(reader_steps=1), [10, 11, 12]), (dict(dual_weights=(0.2,)), [12])):
        other = cfg.__class__(**{**cfg.__dict__, "rq3": dataclasses.replace(cfg.rq3, **change)})
        assert [s.number for s in S.STAGES if S.fingerprint(cfg, s) != S.fingerprint(other, s)] == stages, change


def test_stage_lookup_and_ranges():
    assert S.stage(2) is S.stage("train-generator") is S.stage("02_train_generator")
    assert [s.number for s in S.select("generate", 5)] == [3, 4, 5]
    assert [s.number for s in S.select()] == list(range(1, 13))


def test_rerunning_some_stages_forgets_only_their_timings(tmp_path):
    from xqglib.core.artifacts import RunDir
    from xqglib.core.formats import read_json, write_json

    rd = RunDir(tmp_path)
    write_json(rd.timings, {f"{s.number} {s.name}": {"seconds": 1.0} for s in S.STAGES})
    S.forget_timings(rd, S.select(6, 6))
    assert sorted(int(k.split()[0]) for k in read_json(rd.timings)) == [1, 2, 3, 4, 5, 7, 8, 9, 10, 11, 12]
    S.forget_timings(rd, S.select(4))
    assert sorted(int(k.split()[0]) for k in read_json(rd.timings)) == [1, 2, 3]
