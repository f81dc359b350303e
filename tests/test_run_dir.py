"""A run directory that cannot lose work (issue 16, cases 2, 3, 5, 6 and the disk-full part of 7): one trainer per
directory, checkpoints verified on resume with fallback to the newest intact one, the run's schedule kept, no
checkpoint of non-finite weights, a full disk reported and recovered from. Real trainer processes, CPU, tiny."""

import errno
import json
import logging
import os
import shutil
import signal
import socket
import struct
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from nvc1b.errors import ConfigError, DivergedError
from nvc1b.train import rundir
from nvc1b.train.checkpointing import refuse_non_finite
from nvc1b.train.distributed import DistInfo
from nvc1b.train.resume import CheckpointError, choose_checkpoint, damage
from nvc1b.train.rundir import RunDirLocked, RunLock, check_resumable, keep_schedule
from nvc1b.train.schedule import load_schedule

HELPER = Path(__file__).parent / "helpers" / "train_script.py"
SCHEDULE = """\
preset: {preset}
crop: 32
global_batch: 2
micro_batch: 2
checkpoint_every: 2
keep_checkpoints: 3
stages:
  - {{name: intra, frames: 1, parts: Intra, loss: intra, lr: {lr}, steps: {steps}}}
  - {{name: inter, frames: 2, parts: Inter, loss: meRD,  lr: {inter_lr}, steps: 2}}
"""
STEP2, STEP4 = "00-intra-step0000002", "00-intra-step0000004"
pytestmark = pytest.mark.slow


def write_schedule(path, preset="tiny", lr="1.0e-3", steps=6, inter_lr="1.0e-3"):
    path.write_text(SCHEDULE.format(preset=preset, lr=lr, steps=steps, inter_lr=inter_lr))
    return path


def env():
    e = {**os.environ, "OMP_NUM_THREADS": "1", "NVC1B_PROGRESS": "0"}
    e.pop("RANK", None)
    return e


def train(schedule, run_dir, *args, check=True):
    proc = subprocess.run([sys.executable, str(HELPER), str(schedule), "--run-dir", str(run_dir), *map(str, args)],
                          env=env(), capture_output=True, text=True, timeout=600)
    if check and proc.returncode != 0:
        raise AssertionError(f"exit {proc.returncode}\n{proc.stderr[-4000:]}")
    return proc


def losses(run_dir):
    rows = [json.loads(line) for line in (Path(run_dir) / "logs" / "metrics.jsonl").read_text().splitlines()]
    return [(m["step"], m["train/loss"]) for m in rows]


def error_line(proc):
    lines = [line for line in proc.stderr.splitlines() if line.startswith("nvc1b: error: ")]
    assert len(lines) == 1 and "Traceback" not in proc.stderr, proc.stderr[-3000:]
    return lines[0]


@pytest.fixture(scope="module")
def stopped_run(tmp_path_factory):
    """A run stopped by --max-steps 4 in its first stage: checkpoints at steps 2 and 4 (latest)."""
    root = tmp_path_factory.mktemp("stopped")
    schedule = write_schedule(root / "schedule-given.yaml")
    train(schedule, root / "run", "--max-steps", 4)
    return schedule, root / "run"


@pytest.fixture
def run_copy(stopped_run, tmp_path):
    schedule, run_dir = stopped_run
    shutil.copytree(run_dir, tmp_path / "run")
    return schedule, tmp_path / "run"


def overwrite_floats(path, count=64, value=1e30):
    """Overwrite ``count`` float32 values in the middle of a file with ``value`` (inside the weights' bytes)."""
    raw = bytearray(path.read_bytes())
    at = len(raw) // 2 // 4 * 4
    raw[at : at + 4 * count] = struct.pack(f"<{count}f", *[value] * count)
    path.write_bytes(bytes(raw))


# case 3: corrupt checkpoints are trusted
def test_a_damaged_newest_checkpoint_is_detected_and_the_previous_one_resumed_bit_exactly(run_copy):
    schedule, run_dir = run_copy
    before = dict(losses(run_dir))
    overwrite_floats(run_dir / "checkpoints" / STEP4 / "mp_rank_00_model_states.pt")
    proc = train(schedule, run_dir, "--resume")
    assert f"checkpoint {STEP4} is damaged" in proc.stderr and "differs from its checksum" in proc.stderr
    assert f"resuming from {STEP2}, the newest intact checkpoint" in proc.stderr
    resumed = losses(run_dir)[4:]
    assert [s for s, _ in resumed[:2]] == [3, 4]
    assert [loss for _, loss in resumed[:2]] == [before[3], before[4]]  # bit for bit
    assert json.loads((run_dir / "status.json").read_text())["state"] == "finished"
    assert (run_dir / "abandoned" / STEP4 / "COMPLETE").is_file()  # the damaged one is kept aside, not overwritten

    # item 7: fp32 weights out of a checkpoint, frozen parts included: the stage's final checkpoint gives its export
    out = run_dir.parent / "from-checkpoint.safetensors"
    proc = subprocess.run([sys.executable, "-m", "nvc1b", "export", str(run_dir), "--output", str(out),
                           "--from-checkpoint", "01-inter-step0000002"], env=env(), capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    exported, recovered = (load_file(run_dir / "exports" / "01-inter.safetensors"), load_file(out))
    assert exported.keys() == recovered.keys() and all(torch.equal(exported[k], recovered[k]) for k in exported)


@pytest.mark.parametrize("how", ["deleted", "truncated", "empty", "1e30"])
def test_every_kind_of_damage_falls_back_and_a_chosen_damaged_one_is_refused(run_copy, how, caplog):
    schedule, run_dir = run_copy
    shard = run_dir / "checkpoints" / STEP4 / "zero_pp_rank_0_mp_rank_00_optim_states.pt"
    if how == "deleted":
        shard.unlink()
    elif how == "truncated":
        shard.write_bytes(shard.read_bytes()[: shard.stat().st_size // 2])
    elif how == "empty":
        shard.write_bytes(b"")
    else:
        overwrite_floats(shard)
    assert str(shard) in damage(run_dir, STEP4)
    sched = load_schedule(schedule)
    with caplog.at_level(logging.WARNING, logger="nvc1b"):
        tag, progress = choose_checkpoint(run_dir, sched)
    assert (tag, progress.step) == (STEP2, 2) and f"checkpoint {STEP4} is damaged" in caplog.text
    with pytest.raises(CheckpointError, match=f"--from-checkpoint {STEP4}: the checkpoint is damaged"):
        choose_checkpoint(run_dir, sched, STEP4)


def test_from_checkpoint_picks_one_and_latest_json_is_checked_against_the_record(run_copy, caplog):
    schedule, run_dir = run_copy
    sched = load_schedule(schedule)
    tag, progress = choose_checkpoint(run_dir, sched, STEP2)
    assert (tag, progress.step, progress.total_steps) == (STEP2, 2, 2)
    with pytest.raises(CheckpointError, match=f"no complete checkpoint of that name .*{STEP2}, {STEP4}"):
        choose_checkpoint(run_dir, sched, "00-intra-step0000099")
    latest = run_dir / "checkpoints" / "latest.json"
    edited = json.loads(latest.read_text())
    edited["progress"].update(stage=9, step=1000)
    latest.write_text(json.dumps(edited))
    with caplog.at_level(logging.WARNING, logger="nvc1b"):
        tag, progress = choose_checkpoint(run_dir, sched)
    assert (tag, progress.stage, progress.step) == (STEP4, 0, 4)
    assert "disagrees with the completion record" in caplog.text and "stage, step" in caplog.text
    for t in (STEP2, STEP4):
        overwrite_floats(run_dir / "checkpoints" / t / "mp_rank_00_model_states.pt")
    with pytest.raises(CheckpointError, match="no intact checkpoint to resume from"):
        choose_checkpoint(run_dir, sched)


def test_from_checkpoint_resumes_an_older_one_and_sets_the_newer_ones_aside(run_copy):
    schedule, run_dir = run_copy
    before = dict(losses(run_dir))
    proc = train(schedule, run_dir, "--from-checkpoint", STEP2, "--max-steps", 3)
    assert f"resuming from {STEP2}, chosen with --from-checkpoint" in proc.stderr
    assert losses(run_dir)[4:] == [(3, before[3])]
    assert json.loads((run_dir / "checkpoints" / "latest.json").read_text())["tag"] == "00-intra-step0000003"
    assert not (run_dir / "checkpoints" / STEP4).exists()
    assert (run_dir / "abandoned" / STEP4 / "COMPLETE").is_file()  # the newer one passed over is kept, not lost


# case 5: schedule.yaml is lost on resume
def test_a_resume_that_changes_trained_stages_is_refused_and_schedule_yaml_kept(run_copy, tmp_path):
    schedule, run_dir = run_copy
    kept = (run_dir / "schedule.yaml").read_bytes()
    other = write_schedule(tmp_path / "other-preset.yaml", preset="sdd-21m")
    line = error_line(train(other, run_dir, "--resume", check=False))
    assert "trained with preset 'tiny'" in line and "'sdd-21m'" in line
    assert (run_dir / "schedule.yaml").read_bytes() == kept
    assert sorted(p.name for p in (run_dir / "schedules").iterdir()) == ["000.yaml"]

    with pytest.raises(ConfigError, match=r"stage 0 \('intra'\) is already trained with lr 0.001.* 0.002"):
        check_resumable(run_dir, load_schedule(write_schedule(tmp_path / "lr.yaml", lr="2.0e-3")), trained=1)
    later = load_schedule(write_schedule(tmp_path / "later.yaml", inter_lr="5.0e-4"))  # not trained yet: may change
    check_resumable(run_dir, later, trained=1)
    keep_schedule(run_dir, later)
    assert (run_dir / "schedules" / "000.yaml").read_bytes() == kept
    assert "lr: 0.0005" in (run_dir / "schedules" / "001.yaml").read_text()
    assert (run_dir / "schedule.yaml").read_text() == (run_dir / "schedules" / "001.yaml").read_text()


# case 2: no lock on a run directory
def test_a_second_trainer_on_the_same_directory_is_refused_and_a_dead_ones_lock_taken_over(tmp_path):
    schedule = write_schedule(tmp_path / "long.yaml", steps=400)
    run_dir = tmp_path / "run"
    first = subprocess.Popen([sys.executable, str(HELPER), str(schedule), "--run-dir", str(run_dir)], env=env(),
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        latest, deadline = run_dir / "checkpoints" / "latest.json", time.time() + 300
        while not latest.is_file() and first.poll() is None and time.time() < deadline:
            time.sleep(0.1)
        assert latest.is_file(), "the first trainer wrote no checkpoint"
        rows = len(losses(run_dir))
        for args in ((), ("--resume",)):
            line = error_line(train(schedule, run_dir, *args, check=False))
            assert "in use by another trainer" in line and f"PID {first.pid} on host {socket.gethostname()}" in line
        assert first.poll() is None  # the first one goes on
        steps = [s for s, _ in losses(run_dir)]
        assert len(steps) >= rows and steps == list(range(1, len(steps) + 1))  # one trainer's rows only
    finally:
        os.killpg(first.pid, signal.SIGKILL)
        first.wait()
    total = json.loads(latest.read_text())["progress"]["total_steps"]
    proc = train(schedule, run_dir, "--resume", "--max-steps", total + 1)
    assert f"taking over the lock left by PID {first.pid}" in proc.stderr
    assert (run_dir / "run.lock").read_text() == ""  # released at the end


def test_without_locks_the_holder_in_the_file_decides(tmp_path, monkeypatch, caplog):
    def no_locks(fd, op):
        raise OSError(errno.ENOLCK, "No locks available")

    monkeypatch.setattr(rundir.fcntl, "lockf", no_locks)
    gone = subprocess.Popen(["true"])
    gone.wait()
    lock = tmp_path / rundir.LOCK
    lock.write_text(json.dumps({"host": socket.gethostname(), "pid": os.getpid(), "started": time.time()}))
    with pytest.raises(RunDirLocked, match=f"PID {os.getpid()} on host"):
        RunLock(tmp_path).acquire()
    lock.write_text(json.dumps({"host": socket.gethostname(), "pid": gone.pid, "started": time.time()}))
    held = RunLock(tmp_path)
    with caplog.at_level(logging.WARNING, logger="nvc1b"):
        held.acquire()
    assert f"taking over the lock left by PID {gone.pid}" in caplog.text
    assert json.loads(lock.read_text())["pid"] == os.getpid()
    held.release()
    lock.write_text(json.dumps({"host": "another-node", "pid": 1, "job_id": "4242"}))
    with pytest.raises(RunDirLocked, match="PID 1 on host another-node, SLURM job 4242"):
        RunLock(tmp_path).acquire()


# case 6: non-finite training passes as finished
def test_no_checkpoint_is_written_from_non_finite_weights():
    layer = torch.nn.Linear(3, 3)
    with torch.no_grad():
        layer.weight[1, 2] = float("inf")
    with pytest.raises(DivergedError, match=r"stage 1 \('inter'\) step 3: the weights hold NaN or infinite values "
                                            r"\(parameter 'weight'\)"):
        refuse_non_finite(layer, "stage 1 ('inter') step 3", DistInfo(0, 1, 0, torch.device("cpu")))


# case 7: disk full while checkpointing
def test_a_full_disk_while_checkpointing_removes_the_partial_one_and_resume_works_once_space_is_back(tmp_path):
    disk = tmp_path / "disk"
    disk.mkdir()
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=30m", "tmpfs", str(disk)], capture_output=True,
                             text=True)
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {mounted.stderr.strip() or mounted.returncode}")
    try:
        schedule = write_schedule(tmp_path / "s.yaml", steps=4)
        run_dir = disk / "run"
        proc = train(schedule, run_dir, check=False)  # the first checkpoint (~21 MB) fits, the second does not
        assert proc.returncode == 1
        line = error_line(proc)
        assert f"{run_dir}/checkpoints/{STEP4}: no space left on the disk (" in line and "free)" in line
        assert not (run_dir / "checkpoints" / STEP4).exists()
        assert json.loads((run_dir / "checkpoints" / "latest.json").read_text())["tag"] == STEP2
        assert json.loads((run_dir / "status.json").read_text())["state"] == "failed"
        subprocess.run(["mount", "-o", "remount,size=200m", str(disk)], check=True)
        train(schedule, run_dir, "--resume")
        assert json.loads((run_dir / "status.json").read_text())["state"] == "finished"
        assert [s for s, _ in losses(run_dir)][-4:] == [3, 4, 5, 6]
    finally:
        subprocess.run(["umount", "-l", str(disk)], check=False)


# item 7: DeepSpeed's own recovery tool, as it lies in every checkpoints folder, run as a command
def test_deepspeeds_own_zero_to_fp32_script_recovers_the_exported_weights(stopped_run, tmp_path):
    _, run_dir = stopped_run
    checkpoints = run_dir / "checkpoints"
    out = tmp_path / "fp32"
    proc = subprocess.run([sys.executable, str(checkpoints / "zero_to_fp32.py"), str(checkpoints), str(out),
                           "--tag", STEP4, "--safe_serialization"], env=env(), capture_output=True, text=True,
                          timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    recovered = load_file(out / "model.safetensors")
    export = tmp_path / "export.safetensors"
    proc = subprocess.run([sys.executable, "-m", "nvc1b", "export", str(run_dir), "--output", str(export),
                           "--from-checkpoint", STEP4], env=env(), capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    exported = load_file(export)
    assert len(recovered) > 100
    assert all(torch.equal(value, exported[key.removeprefix("codec.")]) for key, value in recovered.items())
