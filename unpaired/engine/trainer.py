"""The training loop: one batch of real a and b per step, handed to the recipe's objective
(unpaired.engine.objective), which runs its phases in its own order and calls ``update(phase, loss)``.
The engine owns one Adam optimizer per phase; the learning rate is constant for
``train.epochs``, then decays linearly over ``train.decay_epochs`` (per-phase rates follow the
same shape). With ``train.accumulate: N`` a step is N micro-batches (unpaired.engine.phases); with
``train.ema`` the engine keeps the averaged generator (unpaired.engine.average). Under torchrun
each rank trains on its share of the batches (see unpaired.runtime.distributed).
"""
from __future__ import annotations

import contextlib
import logging
import signal
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import torch
from omegaconf import DictConfig

from ..store import checkpoint, files, rng
from .assemble import assemble
from .average import Averaged, translating_networks
from .constraints import Constraints
from .build import CheckedRecipe, build_dataset, check_recipe, data_problems, load_recipe_plugins, provenance
from ..recipe.config import as_typed, for_checkpoint, plain, to_yaml
from ..data import fixed_items, make_loader
from ..data.held_out import watch_images
from ..data.tensors import sample_grid
from ..errors import UnpairedError
from .events import Events, RunInfo
from .phases import PhaseOptimizers, Step
from ..registry import Registry
from .restore import resumable_state
from ..runtime import distributed, health, probe, runlock
from ..runtime.devices import autocast, autocast_dtype, loader_workers, pick_device, precision_name
from ..version import __version__

log = logging.getLogger("unpaired")


def lr_factor(epoch: int, epochs: int, decay_epochs: int) -> float:
    """1 for the first ``epochs``; then 1 - k / (decay_epochs + 1) in decay epoch k = 1, 2, ...
    so the last epoch still trains (the reference's last epoch runs at lr 0)."""
    if epoch < epochs:
        return 1.0
    return max(0.0, 1.0 - (epoch - epochs + 1) / (decay_epochs + 1))


def finished_run(ckpt: Path, step: int, total: int, max_steps: int | None) -> str:
    """The message for ``--resume`` on a run that has nothing left to train."""
    raise_key = (f"train.max_steps (it is {max_steps}; e.g. train.max_steps={2 * step})" if max_steps is not None
                 and max_steps <= total else "train.epochs or train.decay_epochs")
    return (f"--resume: {ckpt} is at step {step} of {total}: the run is finished. To train longer, raise "
            f"{raise_key} on the same command (with --resume)")


@dataclass
class TrainResult:
    step: int
    checkpoint: Path
    out_dir: Path
    interrupted: str = ""  # the signal's name when stopped by one


@dataclass
class Every:
    """How often things fall due, in steps (0: evaluation only at the end, if at all)."""
    log: int
    sample: int
    checkpoint: int
    keep: int  # checkpoints/step_<N>.pt (0: none)
    eval: int
    eval_at_end: bool


class LossWindow:
    """The loss terms summed since the last log step. They stay tensors on the device, so a
    step between log steps never waits for the GPU."""

    def __init__(self, step: int, start_time: float | None = None) -> None:
        self.sums: dict[str, torch.Tensor] = {}
        self.count = 0
        self.start_step = step
        self.start_time = time.perf_counter() if start_time is None else start_time

    def add(self, terms: dict[str, torch.Tensor]) -> None:
        for k, v in terms.items():
            self.sums[k] = self.sums.get(k, 0) + v.detach().float()
        self.count += 1

    def means(self) -> dict[str, torch.Tensor]:
        return {k: v / self.count for k, v in self.sums.items()}

    def rate(self, step: int, now: float) -> float:
        """Steps per second from the window's opening to ``now``."""
        return (step - self.start_step) / max(now - self.start_time, 1e-9)


class StopSignals:
    """SIGINT / SIGTERM ask the loop to stop at the end of the step (and save); a second
    Ctrl-C interrupts at once."""

    def __init__(self) -> None:
        self.received = ""
        self.previous: dict = {}

    def __enter__(self):
        if threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGINT, signal.SIGTERM):
                self.previous[sig] = signal.signal(sig, self._handle)
        return self

    def _handle(self, signum, frame):
        if self.received and signum == signal.SIGINT:
            raise KeyboardInterrupt
        self.received = signal.Signals(signum).name

    def __exit__(self, *exc) -> None:
        for sig, handler in self.previous.items():
            signal.signal(sig, handler)


class Trainer:
    """One training run: ``Trainer(cfg, resume).run()``. The constructor reads as the order
    of set-up: the previous checkpoint, the recipe check, the device, the data and objective,
    the optimizers, the schedule, the resumed state, then compile and DDP."""

    def __init__(self, cfg: DictConfig, resume: bool = False) -> None:
        self.cfg = cfg
        self.out_dir = Path(cfg.out_dir)
        self.ckpt_path = self.out_dir / "checkpoints" / "latest.pt"
        self.world = distributed.setup(cfg.train.device)
        state = self._previous_state(resume)
        registry = load_recipe_plugins(cfg)
        try:  # every name and param, before any data or network is touched
            checked = check_recipe(cfg, registry, rank=self.world.rank)
        except UnpairedError as exc:  # named together with what the data would refuse
            found = exc.problems or [str(exc)]
            raise UnpairedError(problems=list(dict.fromkeys(found + data_problems(cfg, registry)))) from None
        self._pick_device()
        self._build(registry, checked)
        # a no-op unless training in fp16 (it then scales losses against underflow)
        self.scaler = torch.amp.GradScaler(self.device.type, enabled=self.amp_dtype == torch.float16)
        t = cfg.train
        groups = {**self.objective.param_groups(), **self.constraints.param_groups()}
        for key in ("phase_lr", "phase_betas"):  # keyed by the objective's phases
            for phase in t[key]:
                if phase not in groups:
                    raise UnpairedError(f"train.{key}.{phase}: objective {cfg.objective.name!r} has no phase "
                                        f"{phase!r}; its phases: {', '.join(groups)}")
        self.optimizers = PhaseOptimizers(groups, t.lr, t.betas, self.scaler, self.device.type,
                                          phase_lr=plain(t.phase_lr), phase_betas=plain(t.phase_betas),
                                          accumulate=t.accumulate)
        # the averaged generator (train.ema): updated once a step, after a phase training it stepped
        self.averaged = Averaged(translating_networks(self.objective), t.ema) if t.ema is not None else None
        self._average_due = False
        self.optimizers.after_step = self._after_step
        self._plan_steps()
        self.evaluator = self._evaluator() if self.world.is_rank_zero else None
        self.best: dict | None = None  # {"metric", "value", "step"} of checkpoints/best.pt
        self.last_eval: tuple | None = None  # (value of eval.metric, step) of the latest evaluation
        self.step = 0
        self._rng = None
        self.device_line = ""  # the run's first line without its name and folder: data, device, precision, networks
        self.health = health.Health(self.ckpt_path, state["step"] if state is not None else None)
        if state is not None:
            probe.load_resumed(self._load_state, state, self.ckpt_path)
            if self.step >= self.total_steps:
                raise UnpairedError(finished_run(self.ckpt_path, self.step, self.total_steps, cfg.train.max_steps))
        if cfg.train.compile:
            for net in self.objective.networks().values():
                net.compile(backend=cfg.train.compile_backend)  # in place: state_dict keys are unchanged
        # what each phase's forward calls: the phase's module, or its DDP wrapper under torchrun
        self.phases = {phase: distributed.wrap(module, self.device) if self.world.is_distributed else module
                       for phase, module in {**self.objective.phases, **self.constraints.holders}.items()}
        # the phases that train a translating network: the constraints' terms join their losses
        translating = {id(p) for net in translating_networks(self.objective).values() for p in net.parameters()}
        self.g_phases = {phase for phase, ps in groups.items() if any(id(p) in translating for p in ps)}
        self._batch: dict[str, torch.Tensor] = {}  # the micro-batch in progress (the constraints read it)
        self._constraint_terms: dict[str, torch.Tensor] = {}
        # the phases that train a discriminator: an update of one must have judged (penalties)
        self.d_phases = self.assembly.discriminator_phases(self.optimizers.params)

    @property
    def model(self):
        """The objective (its name before 0.2)."""
        return self.objective

    def _pick_device(self) -> None:
        t = self.cfg.train
        self.device = pick_device(t.device)
        if self.device.type == "cuda" and self.world.is_distributed:
            self.device = torch.device("cuda", self.world.local_rank)  # one GPU per rank
        self.amp_dtype = autocast_dtype(t.precision, self.device)
        self.num_workers = loader_workers(self.cfg.data.num_workers, self.device)
        if self.device.type == "cuda":
            torch.backends.cudnn.benchmark = True
        self.channels_last = t.channels_last if t.channels_last is not None else self.device.type == "cuda"

    def _build(self, registry: Registry, checked: CheckedRecipe) -> None:
        """The datasets and the objective (its networks initialised where built, on the device, probed)."""
        cfg, t = self.cfg, self.cfg.train
        rng.seed_all(t.seed)  # torch's, Python's and NumPy's: the same initial weights on every rank
        self.dataset = build_dataset(cfg, registry)
        self.test_dataset = build_dataset(cfg, registry, test=True)
        if t.watch:  # the report's own images: a wrong path is named now, not as a missing row later
            watch_images(t.watch, 3, 16)
        self.channels, sizes = probe.check_dataset(self.dataset, cfg.data.name)
        # the objective: its networks, losses and per-rank state (e.g. CycleGAN's history pools)
        self.assembly = assemble(cfg, registry, self.channels, rank=self.world.rank, checked=checked)
        self.objective = self.assembly.objective
        layout = torch.channels_last if self.channels_last else torch.preserve_format
        self.objective.to(self.device, memory_format=layout)
        # the recipe's augmentation, hooked onto every discriminator (unpaired.engine.augment); None: off
        self.augmentation = self.assembly.augmentation
        if self.augmentation is not None:
            self.augmentation.to(self.device)
        # the recipe's constraints (unpaired.engine.constraints): terms for the generator, networks of their own
        self.constraints = Constraints(cfg, registry, self.objective, self.channels,
                                       dict(getattr(self.dataset, "label_classes", None) or {}))
        for holder in self.constraints.holders.values():
            holder.to(self.device)
        probe.check_model(cfg, self.assembly, sizes, self.device)
        self.provenance = provenance(cfg, registry, checked.losses)

    def _plan_steps(self) -> None:
        """Steps per epoch (one step: a batch on every rank) and the run's total."""
        cfg, t = self.cfg, self.cfg.train
        n_items = len(self.dataset)  # probe.check_dataset made sure it has one
        accumulate = t.accumulate
        # the effective batch of one step: every rank's micro-batches
        self.batch_size = cfg.data.batch_size * accumulate * self.world.size
        self.steps_per_epoch = n_items // self.batch_size
        if self.steps_per_epoch == 0:
            raise UnpairedError(f"data: {n_items} items are fewer than one batch of {self.batch_size} "
                                f"(data.batch_size={cfg.data.batch_size} x train.accumulate={accumulate} x "
                                f"{self.world.size} processes)")
        self.total_steps = (t.epochs + t.decay_epochs) * self.steps_per_epoch
        if t.max_steps is not None:
            self.total_steps = min(self.total_steps, t.max_steps)

    def _evaluator(self):
        e = self.cfg.eval
        if e.every <= 0 and not e.at_end:
            return None
        from ..evaluation.evaluate import Evaluator, check_metric

        check_metric(e.metric)
        return Evaluator(self.test_dataset, extractor=e.extractor, extractor_params=e.extractor_params,
                         max_images=e.max_images, batch_size=e.batch_size, device=self.device,
                         amp_dtype=self.amp_dtype, segmenter=self.constraints.segmenter())

    def evaluate(self) -> dict[str, float]:
        """Evaluation metrics now (of the averaged generator with ``train.ema``); keeps
        checkpoints/best.pt at the best ``eval.metric``."""
        from ..evaluation.evaluate import better

        assert self.evaluator is not None  # rank 0 with eval on: what calls this
        with self.averaged_weights():
            metrics = self.evaluator(self.objective)
        name = self.cfg.eval.metric
        value = metrics.get(name)
        self.last_eval = (value, self.step)
        if value is not None and (self.best is None or better(name, value, self.best["value"])):
            self.best = {"metric": name, "value": value, "step": self.step}
            checkpoint.save(self.state_dict(), self.ckpt_path.with_name("best.pt"))
            log.info("best %s so far: %.5g at step %d -> %s", name, value, self.step,
                     self.ckpt_path.with_name("best.pt"))
        return metrics

    # -- run directory and checkpoints ------------------------------------------------
    def _rank_state_path(self) -> Path:
        return self.ckpt_path.with_name(f"rank{self.world.rank}.pt")

    def _previous_state(self, resume: bool) -> dict | None:
        exists = checkpoint.present(self.ckpt_path)  # a FIFO or a device there is an error, not 'missing'
        if resume and not exists:
            raise UnpairedError(f"--resume: {self.ckpt_path} does not exist; run without --resume to start")
        if not resume and exists:
            raise UnpairedError(
                f"{self.out_dir} already holds a run ({self.ckpt_path}). Continue it with --resume, "
                f"or start a new one elsewhere with out_dir=runs/NEW_NAME")
        if not resume:
            return None
        return resumable_state(self.ckpt_path, self.cfg)

    def _per_rank_state(self) -> dict:
        """What differs between ranks: the objective's extra state (pools), the random generators
        and the augmentation's state (its generator, statistics not yet summed over the ranks)."""
        state = {"objective_state": self.objective.extra_state(), "rng": rng.rng_state()}
        if self.augmentation is not None:
            state["augment"] = self.augmentation.state_dict()
        return state

    def networks(self) -> dict:
        """Every network the run trains: the objective's and the constraints' own
        (``constraint_<i>.<name>``), by the names the checkpoint's ``nets`` holds them under."""
        return {**self.objective.networks(), **self.constraints.networks()}

    def _record(self, nets, **training_state) -> dict:
        """A checkpoint's content (unpaired.store.format.Checkpoint): the step, the recipe, the
        plugins, the translators, the networks named in ``nets``, and ``training_state`` when it
        resumes."""
        networks = self.networks()
        return checkpoint.Checkpoint(
            step=self.step,
            epoch=self.step // self.steps_per_epoch,
            config=for_checkpoint(self.cfg),  # ${oc.env:...} kept as written, never resolved
            objective=self.cfg.objective.name,
            translators=self.assembly.translator_record(),
            nets={k: networks[k].state_dict() for k in nets},
            channels=list(self.channels),
            plugins=self.provenance,
            world_size=self.world.size,
            precision=precision_name(self.amp_dtype),  # what train.precision resolved to
            # the run's first line without the name and out_dir (which may come from ${oc.env:...})
            device_line=self.device_line,
            unpaired_version=__version__,
            averaged=self.averaged.state_dict() if self.averaged is not None else None,
            **training_state,
        ).to_dict()

    def kept_state(self) -> dict:
        """A kept step (checkpoints/step_<N>.pt): the translating generators with the recipe
        and provenance, without the discriminators, optimizer state, pools and random state.
        It translates, evaluates and exports like latest.pt, at a quarter of its size for the
        article's CycleGAN; it does not resume."""
        return self._record(sorted({record["net"] for record in self.assembly.translator_record().values()}))

    def state_dict(self) -> dict:
        """Everything ``--resume`` continues from (checkpoints/latest.pt, best.pt)."""
        return self._record(
            self.networks(),
            optimizers=self.optimizers.state_dict(),
            # the learning-rate schedule is a function of the epoch, stored above
            schedule={"epochs": self.cfg.train.epochs, "decay_epochs": self.cfg.train.decay_epochs},
            scaler=self.scaler.state_dict(),
            best=self.best or {},
            **self._per_rank_state(),
        )

    def _load_state(self, state: dict) -> None:
        for k, net in self.networks().items():
            if k not in state["nets"] and k in self.constraints.networks():  # a constraint added at --resume
                log.info("%s holds no %s: the constraint's network starts afresh", self.ckpt_path, k)
                continue
            net.load_state_dict(state["nets"][k])
        if self.averaged is not None:
            if state.get("averaged"):
                self.averaged.load_state_dict(state["averaged"], str(self.ckpt_path))
            else:  # train.ema switched on at --resume, or a checkpoint of before 0.3
                self.averaged.restart()
                log.info("%s holds no averaged generator: train.ema starts it from the weights of step %d",
                         self.ckpt_path, state["step"])
        elif state.get("averaged"):
            log.info("train.ema is null: the averaged generator in %s is not continued (its checkpoints from "
                     "now on hold the trained weights only)", self.ckpt_path)
        self.optimizers.load_state_dict(state["optimizers"])
        if self.scaler.is_enabled() and state.get("scaler"):
            self.scaler.load_state_dict(state["scaler"])
        own: dict | None = state
        if self.world.rank != 0:
            path = self._rank_state_path()
            same_world = state.get("world_size", 1) == self.world.size
            own = checkpoint.load(path) if same_world and path.is_file() else None
        if own is not None:
            self.objective.load_extra_state(own["objective_state"])
            self._rng = own["rng"]
        if self.augmentation is not None:
            if own is not None:
                self.augmentation.load_state_dict(own.get("augment"), str(self.ckpt_path))
            else:  # another number of processes: rank 0's state (p), this rank's own random stream
                shared = {k: v for k, v in (state.get("augment") or {}).items() if k != "rng"}
                self.augmentation.load_state_dict(shared, str(self.ckpt_path))
        self.step = state["step"]
        self.best = state.get("best") or None

    def save_checkpoint(self) -> Path:
        """Rank 0 writes the checkpoint; other ranks write their pools and RNG beside it."""
        self.health.check_weights(self.step, self.networks())  # never NaN over a good checkpoint
        if self.world.is_rank_zero:
            checkpoint.save(self.state_dict(), self.ckpt_path, kept_step=self.health.saved_step)
        else:
            checkpoint.save({"format": checkpoint.FORMAT, "step": self.step, **self._per_rank_state()},
                            self._rank_state_path())
        self.health.saved(self.step)
        return self.ckpt_path

    def keep_checkpoint(self):
        """Rank 0 writes checkpoints/step_<N>.pt (:meth:`kept_state`) of this step."""
        self.health.check_weights(self.step, self.objective.networks())
        return checkpoint.save(self.kept_state(), checkpoint.step_file(self.ckpt_path.parent, self.step))

    def _drop_later_kept_steps(self) -> None:
        """Kept step checkpoints past the step this run starts from were written by a run that
        died before its next latest.pt: they belong to steps this run trains again (and
        rewrites), so they go, as metrics.csv drops the rows logged after the checkpoint."""
        for step, path in checkpoint.kept_steps(self.ckpt_path.parent).items():
            if step > self.step:
                path.unlink(missing_ok=True)
                log.info("removed %s: written after the checkpoint this run starts from (step %d); "
                         "it is written again when step %d is reached", path, self.step, step)

    # -- the loop ---------------------------------------------------------------------
    def _autocast(self):
        return autocast(self.device, self.amp_dtype)

    def _to_device(self, x: torch.Tensor) -> torch.Tensor:
        x = x.to(self.device, non_blocking=True)
        return x.contiguous(memory_format=torch.channels_last) if self.channels_last else x

    def train_step(self, a: torch.Tensor, b: torch.Tensor,
                   labels: dict[str, torch.Tensor] | None = None) -> dict[str, torch.Tensor]:
        """One optimisation step of the objective (``train.accumulate`` calls of its
        ``train_step``, one per micro-batch of ``a`` and ``b``), the averaged generator's update,
        then the augmentation's ``adapt``; returns its loss terms (tensors, means over the
        micro-batches): the objective's own, ``loss_<phase>`` (what each phase's update was
        given) and ``penalty`` (the adversarial loss's penalty per judge call's batch, summed
        over the discriminators) when there is one, and each constraint's term. ``labels``:
        {"A_label": ..., "B_label": ...} of the batch, where the data has them."""
        n = self.optimizers.accumulate
        for adv in self.assembly.adversarial:  # lazy R1: due at the steps r1_every divides
            adv.at_step(self.step)
        terms: dict[str, torch.Tensor] = {}
        split_labels = {k: v.tensor_split(n) for k, v in (labels or {}).items()}
        for micro, (ma, mb) in enumerate(zip(a.tensor_split(n), b.tensor_split(n))):
            self._batch = {"A": ma, "B": mb, **{k: v[micro] for k, v in split_labels.items()}}
            self._constraint_terms = {}
            step = Step(self.phases, self.step, self.step // self.steps_per_epoch, self.total_steps, self.device,
                        self.amp_dtype, self.world.rank, self.world.size, self.cfg, augmentation=self.augmentation,
                        micro=micro, micro_batches=n)
            self.optimizers.start_micro(micro)
            # forwards under autocast (update() steps out of it); no gradient all-reduce before the last
            with self._no_sync(micro < n - 1), self._autocast():
                found = dict(self.objective.train_step(step, ma, mb, self.update))
                if self.constraints:  # the constraints' own networks, then their terms for the log
                    self.constraints.train_phases(self.phases, self._batch, self.update)
                    found.update({k: v.detach() for k, v in self._constraint_terms.items()})
                for k, v in found.items():
                    v = v.detach() / n if n > 1 else v
                    terms[k] = terms[k] + v if k in terms else v
        self.scaler.update()
        if self._average_due and self.averaged is not None:
            self.averaged.update()
            self._average_due = False
        for phase, loss in self.optimizers.losses.items():
            terms.setdefault(f"loss_{phase}", loss)
        penalty = self.assembly.penalties(self.optimizers.updated, self.d_phases)
        if penalty is not None:
            terms.setdefault("penalty", penalty / n)
        if self.augmentation is not None:  # e.g. ADA's p, from statistics summed over the ranks
            self.augmentation.adapt(self.step + 1, self.batch_size, lambda t: distributed.total(self.world, t))
        return terms

    def _no_sync(self, skip: bool):
        """A block whose backward passes gather gradients without the ranks' all-reduce (every
        phase's DDP wrapper's ``no_sync``): the micro-batches before a step's last."""
        stack = contextlib.ExitStack()
        if skip and self.world.is_distributed:
            for module in self.phases.values():
                if hasattr(module, "no_sync"):
                    stack.enter_context(module.no_sync())
        return stack

    def _after_step(self, phase: str) -> None:
        """After ``phase``'s optimizer stepped: the averaged generator is due when it trains one
        of its networks."""
        if self.averaged is not None and self.averaged.trains(self.optimizers.params[phase]):
            self._average_due = True

    def averaged_weights(self):
        """A block in which the objective's translating networks hold the averaged generator's
        weights (``train.ema``); without one, the trained weights as they are."""
        return self.averaged.lent() if self.averaged is not None else contextlib.nullcontext()

    def update(self, phase: str, loss: torch.Tensor) -> bool:
        """Zero ``phase``'s gradients, backpropagate ``loss`` into its parameters (scaled in fp16,
        outside autocast) and step its optimizer: what an objective calls for each phase, in its
        own order. False when the fp16 scaler skipped the step (unpaired.engine.phases). The phase
        that trains a translating network gets the recipe's constraints' terms added (once per
        micro-batch; unpaired.engine.constraints)."""
        if self.constraints and phase in self.g_phases and not self._constraint_terms:
            self._constraint_terms = self.constraints.generator_terms(self.objective, self._batch)
            loss = loss + sum(self._constraint_terms.values())
        return self.optimizers.update(phase, loss)

    def set_lr(self, epoch: int) -> float:
        """Every phase's rate at this epoch's factor of the schedule; returns ``train.lr``'s."""
        factor = lr_factor(epoch, self.cfg.train.epochs, self.cfg.train.decay_epochs)
        self.optimizers.set_lr(factor)
        return self.cfg.train.lr * factor

    def sample_images(self, batch: dict) -> dict:
        """The images of a sample grid (see the on_sample event)."""
        nets = self.objective.networks().values()
        modes = [n.training for n in nets]
        for n in nets:
            n.eval()
        # under train.seed: a translator that draws noise draws the same for every grid, and the
        # training's random state (rank 0's alone samples) is left as it was
        with rng.seeded(self.cfg.train.seed), torch.no_grad(), self._autocast(), self.averaged_weights():
            rows = self.objective.samples(self._to_device(batch["A"]), self._to_device(batch["B"]))
        for n, mode in zip(nets, modes):
            n.train(mode)
        rows = {k: tuple(((x.float().cpu() + 1) / 2).clamp(0, 1) for x in row) for k, row in rows.items()}
        return {"grid": sample_grid(rows), **rows}

    def run(self) -> TrainResult:
        """Train from ``self.step`` to ``self.total_steps``; a stop signal ends the run at the
        end of a step, with a checkpoint of that step."""
        loader, samples = self._start()
        self.window = LossWindow(self.step)
        stopping = ""
        with StopSignals() as signals:
            try:
                for batch in loader:
                    stopping = self._step(batch, signals, samples)
                    if stopping:
                        break
                self._finish()
            finally:
                with self.averaged_weights():  # the figure and the report: the averaged generator
                    self.events.on_train_end(run=self.run_info, step=self.step, interrupted=stopping)
                distributed.teardown(self.world, together=sys.exc_info()[0] is None)
        return TrainResult(self.step, self.ckpt_path, self.out_dir, stopping)

    def _start(self):
        """The run directory, the loader from this step on, the fixed sample batch and the
        on_train_start event; returns (loader, samples)."""
        cfg, t, world = self.cfg, self.cfg.train, self.world
        if world.is_rank_zero:
            self.out_dir.mkdir(parents=True, exist_ok=True)
            files.write_text(self.out_dir / "config.yaml", to_yaml(cfg))
            self._drop_later_kept_steps()
        shown = self.dataset if self.test_dataset is None else self.test_dataset  # sample grids
        samples = fixed_items(shown, t.samples, t.seed) if world.is_rank_zero else None
        if self._rng is not None:
            rng.set_rng_state(self._rng)
        loader = make_loader(self.dataset, cfg.data.batch_size * t.accumulate, t.seed, self.step, self.total_steps,
                             num_workers=self.num_workers, pin_memory=self.device.type == "cuda",
                             rank=world.rank, world=world.size)
        self.events = Events(cfg.disable_plugins if world.is_rank_zero else None)
        self.device_line = self._device_line()
        name, out_dir = as_typed(cfg, "name"), as_typed(cfg, "out_dir")  # as typed where they read the environment
        what = f"resuming {name} at step {self.step}" if self.step else f"training {name}"
        self.run_info = RunInfo(cfg, self.out_dir, self.step, self.total_steps, self.device, self.objective,
                                description=f"{what} -> {out_dir}: {self.device_line}",
                                checkpoint_step=self.health.saved_step,
                                held_out=shown)
        # plain ints for the loop (recipe lookups are slow next to a GPU step)
        self.every = Every(t.log_every, t.sample_every, t.checkpoint_every, t.keep_every, cfg.eval.every,
                           cfg.eval.at_end or cfg.eval.every > 0)
        self.epoch = self.lr = None
        self.events.on_train_start(run=self.run_info)  # the progress display's first line: the device line
        note = getattr(shown, "held_out_note", None)
        if note and world.is_rank_zero:
            log.info("%s", note)
        return loader, samples

    def _step(self, batch, signals, samples):
        """One step and what falls due after it (log, evaluation, sample grid, checkpoint);
        returns the name of the signal that stops the run, or ""."""
        epoch = self.step // self.steps_per_epoch
        if epoch != self.epoch:  # the schedule changes once an epoch
            self.epoch, self.lr = epoch, self.set_lr(epoch)
        labels = {k: batch[k].to(self.device, non_blocking=True) for k in ("A_label", "B_label") if k in batch}
        terms = self.train_step(self._to_device(batch["A"]), self._to_device(batch["B"]), labels)
        self.window.add(terms)  # with loss_<phase>: each phase's loss (the report's curves per phase)
        self.step += 1
        run, every, last = self.run_info, self.every, self.step >= self.total_steps
        self.events.on_step(run=run, step=self.step)
        # the same on every rank (collectives follow); rank 0 alone evaluates
        eval_now = (every.eval > 0 and self.step % every.eval == 0) or (last and every.eval_at_end)
        log_now = self.step % every.log == 0 or last or eval_now
        stopping = self._agree_on_stop(signals.received, log_now)
        if log_now or stopping:
            self._log(eval_now)
        if self.world.is_rank_zero and (self.step % every.sample == 0 or last):
            self.events.on_sample(run=run, step=self.step, images=self.sample_images(samples))
        keep = every.keep > 0 and self.step % every.keep == 0
        if keep or self.step % every.checkpoint == 0 or last or stopping:
            self._save(latest=self.step % every.checkpoint == 0 or last or bool(stopping), keep=keep)
        return stopping

    def _save(self, latest: bool, keep: bool) -> None:
        """The checkpoints due at this step (latest.pt; the kept step_<N>.pt), then an
        on_checkpoint event for each: a plugin hears of one when both are on disk."""
        written = []
        if keep and self.world.is_rank_zero:
            written.append(self.keep_checkpoint())
        if latest:
            written.append(self.save_checkpoint())
            self.run_info.checkpoint_step = self.step
        with self.averaged_weights():  # the report's timeline translates with what the checkpoint holds
            for path in written:
                self.events.on_checkpoint(run=self.run_info, step=self.step, path=path)

    def _agree_on_stop(self, received: str, log_now: bool) -> str:
        """The signal that stops the run at this step, or "". A signal may reach one rank only,
        or the ranks at different steps; yet all must stop at the same step, or the others
        would wait forever in the next step's gradient all-reduce. So the ranks agree, with one
        all-reduce, and only at log steps: those synchronise anyway (the logged loss means),
        so the steps between them cost no extra round trip. One process stops at once."""
        if self.world.is_distributed and not log_now:
            return ""
        elsewhere = distributed.any_rank(self.world, received, self.device)
        return received or ("SIGTERM" if elsewhere else "")

    def _log(self, eval_now: bool) -> None:
        """The mean loss terms since the last log (over ranks), the speed, the health check
        and, when due, the evaluation: the on_log event."""
        now = time.perf_counter()
        metrics = {"epoch": self.epoch, "lr": self.lr,
                   **{k: float(v) for k, v in distributed.mean(self.world, self.window.means()).items()}}
        if self.augmentation is not None:  # the same on every rank (set from summed statistics)
            metrics.update({k: float(v) for k, v in self.augmentation.metrics().items()})
        metrics["it_per_s"] = self.window.rate(self.step, now)
        self.health.check_metrics(self.step, metrics, self.lr)  # raises on NaN/inf
        if eval_now and self.evaluator is not None:
            metrics.update(self.evaluate())
        self.events.on_log(run=self.run_info, step=self.step, metrics=metrics)
        self.window = LossWindow(self.step, now)  # the next window's time includes this one's evaluation

    def _finish(self) -> None:
        if self.last_eval and self.best:  # the protocol question: say which is which
            log.info("%s: final %.5g (step %d, checkpoints/latest.pt); best %.5g (step %d, "
                     "checkpoints/best.pt)", self.best["metric"], *self.last_eval,
                     self.best["value"], self.best["step"])
        if self.world.is_distributed and not distributed.same_weights(self.world, self.objective, self.device):
            raise RuntimeError("the ranks' weights differ at the end of training")
        if self.world.is_distributed and self.averaged is not None and not distributed.same_tensors(
                self.world, [v for w in self.averaged.weights.values() for v in w.values()], self.device):
            raise RuntimeError("the ranks' averaged generators (train.ema) differ at the end of training")
        metrics = self.augmentation.metrics() if self.augmentation is not None else {}
        if self.world.is_distributed and metrics and not distributed.same_values(self.world, metrics, self.device):
            raise RuntimeError(f"the ranks' augmentation state ({', '.join(sorted(metrics))}) "
                               "differs at the end of training")

    def _device_line(self) -> str:
        """What trains on what: data, batch, steps, device, precision, threads, networks."""
        cfg = self.cfg
        n_g, n_d = (next((sum(p.numel() for p in n.parameters()) for n in self.assembly.networks_of(kind)), 0)
                    for kind in ("generator", "discriminator"))
        prec = precision_name(self.amp_dtype) + (" (auto)" if cfg.train.precision == "auto" else "")
        if self.device.type == "cpu":
            prec += f", {torch.get_num_threads()} threads"
        prec += f", {self.num_workers} loader workers"
        batch = f"batch {cfg.data.batch_size}"
        if cfg.train.accumulate > 1:
            batch += f" x {cfg.train.accumulate} accumulated"
        if self.world.is_distributed:
            batch += f" x {self.world.size} processes"
        if self.batch_size != cfg.data.batch_size:
            batch += f" = {self.batch_size} per step"
        if self.averaged is not None:
            batch += f", averaged generator (ema {self.averaged.decay:g})"
        augment = f", augment {cfg.augment.name}" if self.augmentation is not None else ""
        if self.constraints:
            augment += ", constraints " + ", ".join(c.name for c in cfg.constraints)
        return (f"{data_line(self.dataset, self.test_dataset)}{len(self.dataset)} pairs/epoch, {batch}, "
                f"{self.total_steps} steps, {self.device} {prec}; objective {cfg.objective.name}, "
                f"generator {cfg.generator.name} "
                f"({n_g:,} params), discriminator {cfg.discriminator.name} ({n_d:,} params){augment}")


def data_line(dataset, held_out) -> str:
    """``data A ... , B ...; held out A ..., B ...; `` from the datasets' optional ``describe()``
    (what the run trains on and shows, so a user's own folders are what the first line names)."""
    describe = getattr(dataset, "describe", None)
    if describe is None:
        return ""
    if held_out is None:
        shown = "none (the recipe has no data.test_params): samples use training images"
    elif getattr(held_out, "held_out_note", None):
        shown = "none: samples, the figure and evaluation use training images (next line)"
    else:
        shown = held_out.describe() if getattr(held_out, "describe", None) else "the recipe's data.test_params"
    return f"data {describe()}; held out {shown}; "


def train(cfg: DictConfig, resume: bool = False) -> TrainResult:
    with runlock.hold(cfg.out_dir):  # one run per folder
        return Trainer(cfg, resume=resume).run()
