"""The library's shape: no import cycles, stage running apart from analysis, and a stage table that
agrees with the notebooks."""

from __future__ import annotations

import ast
import dataclasses
import json
from pathlib import Path

import pytest

from xqglib.config.profiles import PROFILES
from xqglib.core.paths import repo_root
from xqglib.pipeline import stages as S

PACKAGE = repo_root() / "xqglib"
#: the subpackages, each one concern (README's Layout says what lives where)
SUBPACKAGES = ("config", "core", "models", "method", "data", "evaluation", "study", "pipeline")


def module_names() -> dict[str, Path]:
    """Every module of the library by dotted name below ``xqglib`` ("core.formats", "cli")."""
    out = {}
    for path in PACKAGE.rglob("*.py"):
        parts = path.relative_to(PACKAGE).with_suffix("").parts
        if parts[-1] in ("__init__", "__main__"):
            continue
        out[".".join(parts)] = path
    return out


def xqglib_imports(tree: ast.AST, modules: set[str]) -> list[tuple[str, list[str]]]:
    """(module, names) for every import of a library module, at any depth (lazy ones too)."""
    out = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.level == 0 and (node.module or "").startswith("xqglib"):
            base = node.module[len("xqglib."):] if node.module != "xqglib" else ""
            for alias in node.names:
                child = f"{base}.{alias.name}" if base else alias.name
                out.append((child, []) if child in modules else (base, [alias.name]))
        elif isinstance(node, ast.Import):
            out += [(a.name[len("xqglib."):], []) for a in node.names if a.name.startswith("xqglib.")]
    return out


def graph() -> dict[str, set[str]]:
    modules = module_names()
    return {name: {m for m, _ in xqglib_imports(ast.parse(path.read_text(encoding="utf-8")), set(modules))
                   if m in modules}
            for name, path in modules.items()}


def reach(edges: dict[str, set[str]], start: str) -> set[str]:
    """Every module ``start`` imports, directly or through others."""
    seen: set[str] = set()
    todo = list(edges.get(start, ()))
    while todo:
        node = todo.pop()
        if node not in seen:
            seen.add(node)
            todo += edges.get(node, ())
    return seen


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


def test_the_graph_helpers_find_cycles_and_indirect_imports():
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set(), "c": {"a", "b"}}) is None
    assert reach({"a": {"b"}, "b": {"c"}, "c": set()}, "a") == {"b", "c"}
    tree = ast.parse("from xqglib.core import formats\nfrom xqglib.study.rq3 import cell_table\n"
                     "def f():\n    from xqglib.pipeline import stages as S\n")
    found = xqglib_imports(tree, {"core.formats", "study.rq3", "pipeline.stages"})
    assert sorted(m for m, _ in found) == ["core.formats", "pipeline.stages", "study.rq3"]


def test_every_module_lives_in_a_subpackage_that_says_what_it_holds():
    top = {name for name in module_names() if "." not in name}
    assert top == {"cli"}, top
    for package in SUBPACKAGES:
        doc = ast.get_docstring(ast.parse((PACKAGE / package / "__init__.py").read_text(encoding="utf-8")))
        assert doc and len(doc.split()) >= 8, package
    assert {name.split(".")[0] for name in module_names()} - {"cli"} == set(SUBPACKAGES)


def test_no_import_cycle_in_xqglib():
    edges = graph()
    assert {"pipeline.stages", "config.settings", "study.experiments", "evaluation.rq1"} <= set(edges)
    assert find_cycle(edges) is None, find_cycle(edges)


def test_running_and_analysis_live_apart():
    """Evaluation and analysis never reach the pipeline, not even through another module; the
    running machinery (stage table, runner) reaches no analysis."""
    edges = graph()
    for module in edges:
        if module.startswith(("evaluation.", "study.")):
            assert not {m for m in reach(edges, module) if m.startswith("pipeline.")}, module
    for module in ("pipeline.stages", "pipeline.runner"):
        assert not {m for m in reach(edges, module) if m.startswith("evaluation.")
                    or m in ("study.analysis", "study.tables", "study.figures", "study.findings")}, module
    # building a model and loading one are separate: the builder never loads through the registry
    assert "models.registry" not in reach(edges, "models.builds")
    assert not (PACKAGE / "statistics.py").exists()  # would shadow the standard library's module


def _sources() -> dict[str, str]:
    """The library, tests, benchmarks and notebooks' code, by file."""
    out = {str(p): p.read_text(encoding="utf-8") for p in PACKAGE.rglob("*.py")}
    out.update({str(p): p.read_text(encoding="utf-8") for d in ("tests", "benchmarks")
                for p in (repo_root() / d).glob("*.py")})
    for path in (repo_root() / "notebooks").glob("*.ipynb"):
        cells = json.loads(path.read_text(encoding="utf-8"))["cells"]
        out[str(path)] = "\n".join("".join(c["source"]) for c in cells if c["cell_type"] == "code")
    return out


def test_nothing_uses_another_modules_underscore_names():
    modules = set(module_names())
    for where, text in _sources().items():
        tree = ast.parse(text)
        aliases = set()
        for module, names in xqglib_imports(tree, modules):
            assert not [n for n in names if n.startswith("_")], (where, module, names)
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("xqglib"):
                aliases.update(a.asname or a.name for a in node.names
                               if f"{node.module[len('xqglib.'):]}.{a.name}".strip(".") in modules)
        private = [(node.value.id, node.attr) for node in ast.walk(tree) if isinstance(node, ast.Attribute)
                   and isinstance(node.value, ast.Name) and node.value.id in aliases and node.attr.startswith("_")]
        assert not private, (where, private)


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
    from xqglib.core.timing import Timing, read_timings, write_timings

    rd = RunDir(tmp_path)
    write_timings(rd.timings, [Timing(s.number, s.name, seconds=1.0) for s in S.STAGES])
    S.forget_timings(rd, S.select(6, 6))
    assert [t.stage for t in read_timings(rd.timings)] == [1, 2, 3, 4, 5, 7, 8, 9, 10, 11, 12]
    S.forget_timings(rd, S.select(4))
    assert [t.stage for t in read_timings(rd.timings)] == [1, 2, 3]
