"""TrainConfig: YAML + flags + --set, unknown keys as errors, the resolved config round trip."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from dumpcli.commands.train import resolve_config
from dumpcli.config import (TrainConfig, apply_sets, config_to_dict, load_config_file, validate_config,
                            write_resolved_config)
from dumpcli.errors import DumpError


def test_resolved_config_round_trips_through_yaml(tmp_path: Path) -> None:
    cfg = apply_sets(TrainConfig(), ["grpo.lr=3e-5", "model.lora=false", "data.distributions=a,b",
                                     "scheduler.options.c=0.5", "grpo.epsilon_high=0.28"])
    write_resolved_config(cfg, tmp_path / "config.yaml")
    raw = yaml.safe_load((tmp_path / "config.yaml").read_text())
    assert raw["format_version"] == 1 and "dump_version" in raw
    assert set(raw) >= {"model", "data", "grpo", "scheduler", "run"}
    assert load_config_file(tmp_path / "config.yaml") == cfg


def test_set_converts_values_by_field_type() -> None:
    cfg = apply_sets(TrainConfig(), ["grpo.lr=1e-5", "model.lora=false", "grpo.steps=7",
                                     "data.distributions=x, y", "grpo.epsilon_high=none"])
    assert cfg.grpo.lr == 1e-5 and cfg.model.lora is False and cfg.grpo.steps == 7
    assert cfg.data.distributions == ["x", "y"] and cfg.grpo.epsilon_high is None


def test_unknown_key_names_the_key_and_the_allowed_ones() -> None:
    with pytest.raises(DumpError, match=r"unknown key grpo\.learning_rate; allowed in grpo: steps, .*\blr\b"):
        apply_sets(TrainConfig(), ["grpo.learning_rate=1e-4"])


def test_unknown_section_in_a_yaml_file_is_an_error(tmp_path: Path) -> None:
    (tmp_path / "c.yaml").write_text("optim:\n  lr: 0.1\n")
    with pytest.raises(DumpError, match=r"unknown section 'optim'; allowed: model, data, grpo, scheduler, run"):
        load_config_file(tmp_path / "c.yaml")


def test_unknown_key_in_a_yaml_file_names_the_file(tmp_path: Path) -> None:
    (tmp_path / "c.yaml").write_text("run:\n  sed: 3\n")
    with pytest.raises(DumpError, match=r"c\.yaml: unknown key run\.sed"):
        load_config_file(tmp_path / "c.yaml")


def test_wrongly_typed_value_is_an_error() -> None:
    with pytest.raises(DumpError, match=r"grpo\.steps must be an integer, got 'ten'"):
        apply_sets(TrainConfig(), ["grpo.steps=ten"])


def test_config_from_another_format_version_is_refused(tmp_path: Path) -> None:
    (tmp_path / "c.yaml").write_text("format_version: 2\ngrpo:\n  steps: 3\n")
    with pytest.raises(DumpError, match="format_version 2"):
        load_config_file(tmp_path / "c.yaml")


def test_micro_batch_must_divide_the_completions_of_a_step() -> None:
    cfg = apply_sets(TrainConfig(), ["grpo.batch_size=4", "grpo.num_generations=8", "grpo.micro_batch_size=5"])
    with pytest.raises(DumpError, match="must divide batch_size x num_generations = 32"):
        validate_config(cfg)
    validate_config(apply_sets(cfg, ["grpo.micro_batch_size=8"]))


def test_unknown_loss_type_lists_the_allowed_ones() -> None:
    with pytest.raises(DumpError, match="allowed: grpo, bnpo, dr_grpo"):
        validate_config(apply_sets(TrainConfig(), ["grpo.loss_type=dapo"]))


def test_kl_without_lora_is_refused() -> None:
    with pytest.raises(DumpError, match="grpo.beta > 0 needs LoRA"):
        validate_config(apply_sets(TrainConfig(), ["grpo.beta=0.01", "model.lora=false"]))


def test_a_group_needs_two_completions() -> None:
    with pytest.raises(DumpError, match="num_generations must be at least 2"):
        validate_config(apply_sets(TrainConfig(), ["grpo.num_generations=1"]))


def test_flags_override_the_file_and_set_overrides_flags(tmp_path: Path) -> None:
    (tmp_path / "c.yaml").write_text("grpo:\n  lr: 0.1\n  steps: 5\nrun:\n  seed: 9\n")
    cfg = resolve_config(tmp_path / "c.yaml", {"lr": 0.01, "seed": 3}, [], ["run.seed=4"])
    assert (cfg.grpo.lr, cfg.grpo.steps, cfg.run.seed) == (0.01, 5, 4)


def test_switching_scheduler_drops_the_other_schedulers_options(tmp_path: Path) -> None:
    (tmp_path / "c.yaml").write_text("scheduler:\n  name: ucb\n  options: {c: 0.5}\n")
    cfg = resolve_config(tmp_path / "c.yaml", {"scheduler": "uniform"}, ["weight_by_size=true"], [])
    assert cfg.scheduler.name == "uniform" and cfg.scheduler.options == {"weight_by_size": True}  # typed


def test_every_field_has_help_text() -> None:
    from dataclasses import fields

    cfg = TrainConfig()
    for section in config_to_dict(cfg):
        for f in fields(getattr(cfg, section)):
            assert f.metadata.get("help"), f"{section}.{f.name} has no help"
