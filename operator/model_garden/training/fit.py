"""The trainer's last stages: the loop with progress, checkpoints and the carbon budget, then the
final eval and the artifacts.

Every step updates ``/progress`` and the carbon figure; every ``checkpointing.everySteps`` steps
evaluates and checkpoints (not the last step: its artifacts are the output). A stop request
(SIGTERM, the budget) ends the loop at a step boundary with a checkpoint, so a rerun resumes.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from model_garden.api.common import decimal_value
from model_garden.api.contracts import Outcome, TrainingMetrics, TrainingResult, TrainingState
from model_garden.carbon.tracker import TrainingCarbonTracker

from .artifacts import hardware_name, save_artifacts
from .distributed import rank0_says
from .evaluation import run_evaluation
from .exits import EXIT_TERMINATED, exit_code
from .fsdp import full_weights, reshard
from .loop import Interrupted, LoopState, evaluate, train
from .resume import Resumed, save_checkpoint
from .session import Finished, RunContext, log
from .stages import Model, Tokens


def metrics_of(state: LoopState, spe: int, truncated: int) -> TrainingMetrics:
    """The result's metrics: train loss over the last 10 steps (one step's loss is noise)."""
    recent = state.losses[-10:]
    return TrainingMetrics(
        train_loss=sum(recent) / len(recent) if recent else None,
        eval_loss=state.eval_loss,
        initial_eval_loss=state.initial_eval_loss,
        steps=state.step,
        epochs=round(state.step / spe, 4),
        train_tokens=state.tokens,
        tokens_per_second=state.tokens / state.train_seconds if state.train_seconds else None,
        truncated_examples=truncated,
    )


@dataclass(eq=False)
class Fit:
    """One run's training: the context, its data, model and checkpoint folder, and the state."""

    ctx: RunContext
    tokens: Tokens
    model: Model
    carbon: TrainingCarbonTracker
    root: Path
    state: LoopState

    @property
    def budget(self) -> float | None:
        kg = self.ctx.config.spec.carbon.budget_kg
        return decimal_value(kg) if kg else None

    def evaluate(self) -> float | None:
        """Eval loss on the held-out split (None without one); shown on /progress."""
        hp, loaded = self.ctx.config.spec.hyperparameters, self.model.loaded
        ev = self.tokens.eval
        loss = evaluate(
            loaded.model, ev.input_ids, ev.labels, hp.batch_size, self.tokens.pad_id, loaded.device
        )
        if loss is not None:
            self.ctx.tracker.set_eval_loss(loss)
        return loss

    def checkpoint(self) -> None:
        save_checkpoint(self.ctx, self.model, self.root, self.state, self.carbon.energy())

    def on_step(self, st: LoopState, loss: float, lr: float, tokens: int, epoch: float) -> None:
        """After each step: progress and carbon, the periodic eval + checkpoint, the log line,
        and the budget check (it stops the loop at the next boundary, like SIGTERM). Under
        torchrun only rank 0 does this: the step's figures are already global. Sharded
        (FSDP), every process joins the eval and the checkpoint: their forwards and the
        gathering of the full state are collectives."""
        total = self.model.total
        due = st.step % self.ctx.config.spec.checkpointing.every_steps == 0 and st.step < total
        if not self.ctx.world.main:
            if due and self.model.sharded:
                st.eval_loss = self.evaluate()
                self.checkpoint()
            return
        tracker = self.ctx.tracker
        tracker.step_done(st.step, epoch, loss, lr, tokens)
        rep = self.carbon.report()
        tracker.set_carbon(rep.energy_kwh, rep.emissions_kg, str(rep.method))
        if due:
            st.eval_loss = self.evaluate()
            self.checkpoint()
        snap = tracker.snapshot()
        log(
            "step",
            step=st.step,
            total=total,
            loss=round(loss, 5),
            lr=lr,
            tokens_per_s=snap.tokens_per_second and round(snap.tokens_per_second, 1),
            eta_s=snap.eta_seconds and round(snap.eta_seconds, 1),
        )
        budget, flag = self.budget, self.ctx.flag
        if budget is not None and rep.emissions_kg > budget and not flag.reason:
            flag.reason = "CarbonBudgetExceeded"

    def loop(self) -> None:
        """The initial eval (once per run, kept across restarts), then the steps; a stop
        request checkpoints and ends the run (:class:`Finished`)."""
        ctx, st, spec = self.ctx, self.state, self.ctx.config.spec
        if st.initial_eval_loss is None and (ctx.world.main or self.model.sharded):
            ctx.tracker.set_state(TrainingState.EVALUATING)
            st.initial_eval_loss = self.evaluate()  # sharded: every process (collective)
            if ctx.world.main:
                log("initial eval", eval_loss=st.initial_eval_loss)
        ctx.tracker.start_training()
        m, hp = self.model, spec.hyperparameters
        try:
            train(
                m.loaded.model,
                self.tokens.train.input_ids,
                self.tokens.train.labels,
                batch_size=hp.batch_size,
                accumulation=hp.gradient_accumulation_steps,
                seed=hp.seed,
                group_by_length=spec.dataset.packing,
                total_steps=m.total,
                steps_per_epoch=m.steps_per_epoch,
                optimizer=m.optimizer,
                scheduler=m.scheduler,
                pad_id=self.tokens.pad_id,
                device=m.loaded.device,
                state=st,
                on_step=self.on_step,
                should_stop=ctx.flag,
                world=ctx.world,
                sharded=m.sharded,
            )
        except Interrupted as stop:
            raise Finished(*self.interrupted(stop.reason)) from stop

    def interrupted(self, reason: str) -> tuple[TrainingResult, int]:
        """Checkpoint where the loop stopped (unless that step already has one) and say why."""
        ctx, st = self.ctx, self.state
        ctx.tracker.set_state(TrainingState.SAVING)
        needed = ctx.world.main and not (self.root / f"checkpoint-{st.step}").exists()
        if self.model.sharded:  # every process gathers the state: rank 0's answer for all
            needed = rank0_says(ctx.world, needed)
        if needed and st.step > 0:
            self.checkpoint()
        ctx.base.metrics = metrics_of(st, self.model.steps_per_epoch, self.tokens.train.truncated)
        if reason == "CarbonBudgetExceeded":
            msg = f"emissions passed the budget of {self.budget} kg CO2e at step {st.step}"
            result = ctx.stopped(reason, msg)
            return result, exit_code(result)  # no retry: raising the budget resumes instead
        return ctx.terminated(st.step), EXIT_TERMINATED

    def save(self) -> TrainingResult:
        """The final eval, then the weights, the final carbon figure (merge included, so the
        model cards and the result agree), cards and digests: the succeeded result. Under
        torchrun rank 0 alone evaluates and saves; the others end here (their result is not
        written: rank 0's is the run's). Sharded (FSDP), every process joins the evaluations
        and the gathering of the full weights (collectives); rank 0 writes them."""
        ctx, st = self.ctx, self.state
        done = {"outcome": Outcome.SUCCEEDED, "reason": "Completed"}
        rank_n = f"rank {ctx.world.rank}: {st.step} steps; rank 0 saves and reports"
        sharded = self.model.sharded
        if not ctx.world.main and not sharded:
            return ctx.base.model_copy(update={**done, "message": rank_n})
        ctx.tracker.set_state(TrainingState.EVALUATING)
        st.eval_loss = self.evaluate()
        loaded = self.model.loaded
        evaluation = run_evaluation(
            ctx.config, loaded, self.tokens.tokenizer, self.tokens.eval, st.eval_loss
        )
        reshard(loaded.model)  # the samples' forwards left the root gathered
        weights = full_weights(loaded.model) if sharded else None
        if not ctx.world.main:
            return ctx.base.model_copy(update={**done, "message": rank_n})
        log("final eval", eval_loss=st.eval_loss, initial=st.initial_eval_loss)
        ctx.tracker.set_state(TrainingState.SAVING)
        metrics = metrics_of(st, self.model.steps_per_epoch, self.tokens.train.truncated)
        artifacts = save_artifacts(
            ctx.config,
            loaded,
            self.tokens.tokenizer,
            metrics,
            self.carbon.stop,
            hardware_name(loaded.device, ctx.threads),
            Path(ctx.config.runtime.output_dir),
            evaluation,
            weights,
        )
        message = f"{st.step} steps; eval loss {st.initial_eval_loss} -> {st.eval_loss}"
        short = evaluation.shortened() if evaluation is not None else None
        update: dict[str, object] = {
            **done,
            "message": message,
            "metrics": metrics,
            "artifacts": artifacts,
            "evaluation": short,
        }
        return ctx.base.model_copy(update=update)


def fit(
    ctx: RunContext, tokens: Tokens, model: Model, carbon: TrainingCarbonTracker, resumed: Resumed
) -> TrainingResult:
    """Train from where the checkpoint left off, then save: the run's succeeded result."""
    run = Fit(ctx, tokens, model, carbon, resumed.root, resumed.state)
    run.loop()
    return run.save()
