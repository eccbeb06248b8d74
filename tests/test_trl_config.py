"""How dump's config reaches TRL's GRPOConfig (dumpcli.engines.trl_args), checked without importing TRL."""

from __future__ import annotations

import pytest

from dumpcli.config import TrainConfig, apply_sets, validate_config
from dumpcli.engines.trl_args import LOSS_TYPES, classified_keys, grpo_config_kwargs
from dumpcli.errors import DumpError


def cfg(*sets: str) -> TrainConfig:
    return apply_sets(TrainConfig(), ["run.engine=trl", *sets])


def test_every_config_key_is_mapped_handled_by_dump_or_refused() -> None:
    unclassified = [k for k, kind in classified_keys().items() if kind == "unclassified"]
    assert unclassified == []


def test_one_step_is_batch_size_x_num_generations_completions_over_all_processes() -> None:
    c = cfg("grpo.batch_size=4", "grpo.num_generations=8", "grpo.micro_batch_size=4")
    for world in (1, 2, 4, 8):
        kw = grpo_config_kwargs(c, world, "out")
        assert kw["per_device_train_batch_size"] * kw["gradient_accumulation_steps"] * world == 32
        assert kw["per_device_train_batch_size"] == 4


def test_without_micro_batch_each_process_takes_its_share_at_once() -> None:
    kw = grpo_config_kwargs(cfg("grpo.batch_size=3", "grpo.num_generations=4"), 2, "out")
    assert (kw["per_device_train_batch_size"], kw["gradient_accumulation_steps"]) == (6, 1)


def test_a_batch_that_cannot_be_split_over_the_processes_is_refused() -> None:
    with pytest.raises(DumpError, match="12 completions cannot be split over 5 processes"):
        grpo_config_kwargs(cfg("grpo.batch_size=3", "grpo.num_generations=4"), 5, "out")


def test_names_and_units_are_translated() -> None:
    kw = grpo_config_kwargs(cfg("grpo.loss_type=bnpo", "grpo.scale_rewards=false", "grpo.num_iterations=2",
                                "grpo.steps=10", "grpo.lr_schedule=constant", "grpo.warmup_steps=3"), 1, "out")
    assert kw["loss_type"] == LOSS_TYPES["bnpo"] == "dapo"
    assert kw["scale_rewards"] == "none"
    assert kw["max_steps"] == 20  # TRL counts optimizer steps: num_iterations per generation round
    assert kw["lr_scheduler_type"] == "constant_with_warmup"


def test_a_value_trl_cannot_honour_is_refused_naming_the_key() -> None:
    with pytest.raises(DumpError, match=r"^grpo\.advantage_eps=1e-06 has no TRL equivalent: .*use --engine dump$"):
        grpo_config_kwargs(cfg("grpo.advantage_eps=1e-6"), 1, "out")


def test_trl_args_pass_through_but_may_not_override_a_mapped_key() -> None:
    assert grpo_config_kwargs(cfg("trl.args.logging_dir=tb"), 1, "out")["logging_dir"] == "tb"
    with pytest.raises(DumpError, match=r"trl\.args\.learning_rate is set by dump itself"):
        grpo_config_kwargs(cfg("trl.args.learning_rate=0.1"), 1, "out")


def test_the_trl_section_needs_the_trl_engine() -> None:
    with pytest.raises(DumpError, match=r"trl\.use_vllm is set, but only --engine trl reads"):
        validate_config(apply_sets(TrainConfig(), ["trl.use_vllm=true"]))


def test_an_unknown_engine_lists_the_known_ones() -> None:
    with pytest.raises(DumpError, match="run.engine 'deepspeed' is unknown; allowed: dump, trl"):
        validate_config(apply_sets(TrainConfig(), ["run.engine=deepspeed"]))


def test_docs_engines_lists_every_mapped_key_and_field() -> None:
    from pathlib import Path

    from dumpcli.engines.trl_args import TABLE

    text = (Path(__file__).parents[1] / "docs" / "engines.md").read_text()
    missing = [f"{row.key} -> {row.field}" for row in TABLE if f"`{row.key}`" not in text or f"`{row.field}`" not in text
               and f"{row.field}" != row.key.split(".")[1]]
    assert missing == []
