"""fp32 weights out of any checkpoint of a run, frozen parts included, as a verified nvc1b export.

DeepSpeed's zero_to_fp32 rebuilds the trained weights from the shards; the parts a stage kept frozen are taken from
the model the stage started from (the previous stage's export, or the seeded initial model), exactly as the trainer
does at the end of every stage."""

from __future__ import annotations

import logging
from pathlib import Path

from ..files import check_output
from ..families import family_of
from ..model.export import save_model
from .checkpointing import checkpoint_dir, consolidated_weights
from .resume import CheckpointError, choose_checkpoint, complete_tags
from .rundir import SCHEDULE
from .schedule import load_schedule
from .stage import stage_start_model

log = logging.getLogger("nvc1b.train")


def export_checkpoint(run_dir: str | Path, output: str | Path, tag: str | None = None) -> tuple[Path, str]:
    """Write the weights of checkpoint ``tag`` (default: the newest intact one) of ``run_dir`` to ``output``;
    returns (output, tag)."""
    run_dir = Path(run_dir)
    check_output(output, [checkpoint_dir(run_dir), run_dir / SCHEDULE], what="--output")
    schedule = load_schedule(run_dir / SCHEDULE)
    chosen = choose_checkpoint(run_dir, schedule, tag)
    if chosen is None:
        raise CheckpointError(f"{checkpoint_dir(run_dir)}: the run has no complete checkpoint "
                              f"(there are: {', '.join(complete_tags(run_dir)) or 'none'})")
    tag, progress = chosen
    start = stage_start_model(schedule, progress.stage, run_dir)
    model = family_of(start).build(start.config)
    model.load_state_dict(consolidated_weights(run_dir, tag, start))
    path = save_model(model, output, extra={"stage": progress.stage_name, "checkpoint": tag})
    log.info("wrote the fp32 weights of %s (stage %s, step %d) to %s", tag, progress.stage_name, progress.step, path)
    return path, tag
