import pytest
import torch
from helpers.slurm_cluster import Unavailable, start_local_slurm, start_two_node_slurm

from nvc1b.config.model import load_preset
from nvc1b.model import VideoCodec


@pytest.fixture(autouse=True, scope="session")
def _private_cache(tmp_path_factory):
    """Measurements the tests make are kept apart from the user's cache (nvc1b.perf.cache)."""
    mp = pytest.MonkeyPatch()
    mp.setenv("NVC1B_CACHE", str(tmp_path_factory.mktemp("nvc1b-cache")))
    yield
    mp.undo()


def _slurm_cluster(start, root, what: str):
    """Start a test cluster, point SLURM_CONF at it, and stop it at the end whatever the tests did."""
    try:
        cluster = start(root)
    except Unavailable as exc:
        pytest.skip(f"no {what}: {exc}")
    mp = pytest.MonkeyPatch()
    mp.setenv("SLURM_CONF", str(cluster.conf))
    try:
        yield cluster
    finally:
        cluster.stop()
        mp.undo()


@pytest.fixture(autouse=True, scope="session")
def _train_on_cpu():
    """Trainers the tests start (several ranks over gloo, bit-exact resumes) run on the CPU even where CUDA is
    present: one GPU cannot host several ranks, and exact-resume checks are made in fp32 on the CPU."""
    mp = pytest.MonkeyPatch()
    mp.setenv("NVC1B_DEVICE", "cpu")
    yield
    mp.undo()


@pytest.fixture(scope="module")
def slurm(tmp_path_factory):
    """A real SLURM controller and node daemon on this machine for the tests of one module (skipped where
    Debian's slurmctld, slurmd and munge cannot be installed)."""
    yield from _slurm_cluster(start_local_slurm, tmp_path_factory.mktemp("slurm"), "local SLURM controller")


@pytest.fixture(scope="module")
def slurm_two_nodes(tmp_path_factory):
    """A real SLURM controller with two nodes, n1 and n2: each slurmd in its own network namespace with its own
    address on a private bridge of this machine (skipped where that cannot be set up). The namespaces, the bridge
    and the daemons are removed at the end."""
    yield from _slurm_cluster(start_two_node_slurm, tmp_path_factory.mktemp("slurm2"), "two-node SLURM cluster")


@pytest.fixture(autouse=True)
def _seed_and_threads():
    torch.manual_seed(0)
    yield


@pytest.fixture(scope="session")
def tiny_config():
    return load_preset("tiny")


@pytest.fixture
def tiny_model(tiny_config):
    torch.manual_seed(0)
    return VideoCodec(tiny_config)


def fit_briefly(model, steps: int = 8, size: int = 48, seed: int = 0):
    """A few Adam steps on smooth random clips (I + 2 P-frames, all four rate anchors) so that the entropy
    models are no longer at their initialisation; returns the model in eval mode."""
    from nvc1b.model.quantization import lambda_for

    gen = torch.Generator().manual_seed(seed)
    opt = torch.optim.Adam(model.parameters(), lr=2e-3)
    for _ in range(steps):
        frames = torch.rand(2, 3, 3, size, size, generator=gen)
        frames = torch.nn.functional.avg_pool2d(frames.flatten(0, 1), 7, 1, 3).view_as(frames)
        q = torch.randint(0, 4, (2,), generator=gen).float()
        outs = [model.intra_step(frames[:, 0], q)]
        for t in range(1, 3):
            outs.append(model.inter_step(frames[:, t], outs[-1].state, q))
        lam = lambda_for(q)
        loss = sum((lam * ((o.x_hat - frames[:, t]) ** 2).mean(dim=(1, 2, 3)) + o.bpp()).mean() for t, o in enumerate(outs))
        opt.zero_grad()
        loss.backward()
        opt.step()
    return model.eval()


@pytest.fixture(scope="session")
def trained_tiny_export(tmp_path_factory, tiny_config):
    """Path of an export of the tiny model after a few training steps (shared by the bitstream tests)."""
    from nvc1b.model.export import save_model

    torch.manual_seed(0)
    model = fit_briefly(VideoCodec(tiny_config))
    return save_model(model, tmp_path_factory.mktemp("trained-tiny") / "exports" / "tiny-fit.safetensors")
