"""One trainer run: config → dataset check → model → train (checkpoints, progress) → artifacts.

Whatever happens, a :class:`TrainingResult` goes to the termination-message path and the output
dir. SIGTERM stops the run at the next step boundary, writes a checkpoint and exits with 143
within :data:`SIGTERM_EXIT_BOUND_SECONDS`; past that bound a watchdog exits anyway (the last
complete checkpoint stays valid, since checkpoints are atomic).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import signal
import sys
import threading
import time
from pathlib import Path
from types import FrameType
from typing import Any

from model_garden.api.common import decimal_value
from model_garden.api.contracts import (
    Outcome,
    TrainingConfig,
    TrainingMetrics,
    TrainingResult,
    TrainingState,
    read_document,
)

from . import checkpoints, ownership, runkey
from .datasets import DatasetError, DatasetErrors, load_examples, split_eval
from .outputs import failure, write_result
from .progress import ProgressServer, ProgressTracker

SIGTERM_EXIT_BOUND_SECONDS = float(os.environ.get("MODEL_GARDEN_SIGTERM_BOUND", "60"))
"""After SIGTERM the trainer exits within this bound (one step + one checkpoint save normally);
the operator sets the pod's terminationGracePeriodSeconds above it (90 s)."""
EXIT_FAILED = 1
"""A failure a retry may fix (a backend error, a node problem): the Job retries (backoffLimit)."""
EXIT_INVALID_CONFIG = 2
"""The TrainingConfig cannot be read: the Job's podFailurePolicy fails the Job at once."""
EXIT_BAD_INPUT = 3
"""The input is wrong in a way no retry fixes (a dataset that does not parse, an output
directory that is not this job's, a checkpoint that is refused): the podFailurePolicy fails the
Job at once instead of repeating the same failure ``backoffLimit`` times. The operator's
``TRAINER_EXIT_BAD_INPUT`` must equal it (a unit test checks)."""
EXIT_TERMINATED = 143

BAD_INPUT_REASONS = frozenset(
    {"DatasetError", ownership.REASON, checkpoints.REFUSED, "CarbonBudgetExceeded"}
)
"""TrainingResult reasons that exit with :data:`EXIT_BAD_INPUT`: a retry cannot change them (a
retry after the carbon budget would resume and stop again at once; raising the budget resumes
the job instead, through the operator)."""


def exit_code(result: TrainingResult) -> int:
    """The process exit code of a failed run's result (its reason decides whether retrying
    can help); the result itself still goes to the termination message either way."""
    return EXIT_BAD_INPUT if result.reason in BAD_INPUT_REASONS else EXIT_FAILED


def log(message: str, **fields: Any) -> None:
    line = {"ts": round(time.time(), 3), "msg": message, **fields}
    print(json.dumps(line, default=str), flush=True)


class StopFlag:
    """Set by SIGTERM (and by the carbon budget); the loop polls it between steps."""

    def __init__(self) -> None:
        self.reason: str | None = None
        self.signalled_at: float | None = None

    def __call__(self) -> str | None:
        return self.reason


def default_threads() -> int:
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not Linux
        return max(1, os.cpu_count() or 1)


def _install_sigterm(flag: StopFlag, on_deadline: Any) -> None:
    def handler(signum: int, frame: FrameType | None) -> None:
        if flag.signalled_at is not None:
            return
        flag.reason = "SIGTERM"
        flag.signalled_at = time.monotonic()
        log("SIGTERM: checkpointing at the next step boundary", bound_s=SIGTERM_EXIT_BOUND_SECONDS)
        timer = threading.Timer(SIGTERM_EXIT_BOUND_SECONDS, on_deadline)
        timer.daemon = True
        timer.start()

    signal.signal(signal.SIGTERM, handler)


def run(config: TrainingConfig) -> tuple[TrainingResult, int]:
    started = time.monotonic()
    spec, rt = config.spec, config.runtime
    hp = spec.hyperparameters
    method = str(spec.method.type)
    output_dir = Path(rt.output_dir)
    owner = ownership.owner_id(config.job)
    result_dir: Path | None = None  # the result file goes into the output dir once it is ours
    flag = StopFlag()
    tracker = ProgressTracker(total_steps=0)
    tracker.labels = {"job": config.job.name, "namespace": config.job.namespace}
    base = TrainingResult(outcome=Outcome.FAILED, method=method, base_model=rt.base_model)
    carbon: Any = None

    def finish(result: TrainingResult, code: int) -> tuple[TrainingResult, int]:
        result.duration_seconds = round(time.monotonic() - started, 3)
        if carbon is not None:
            result.carbon = carbon.stop()
        write_result(result, rt.termination_message_path, result_dir)
        tracker.set_state(
            TrainingState.DONE if result.outcome == Outcome.SUCCEEDED else TrainingState.FAILED
        )
        return result, code

    def on_deadline() -> None:  # SIGTERM bound passed: leave now, the last checkpoint is valid
        res = base.model_copy(
            update={
                "reason": "Terminated",
                "message": f"SIGTERM: no step boundary within {SIGTERM_EXIT_BOUND_SECONDS}s; "
                "exiting; a rerun resumes from the last complete checkpoint",
            }
        )
        write_result(res, rt.termination_message_path, result_dir)
        os._exit(EXIT_TERMINATED)

    _install_sigterm(flag, on_deadline)
    server = None
    if rt.progress_port is not None:
        server = ProgressServer(tracker, rt.progress_port).start()
        log("progress server", port=server.port)
    try:
        # 0. the output directory, before anything is written: ours, or refused untouched
        result_dir = ownership.claim(output_dir, owner)
        # 1. the dataset, before any model weight is loaded
        tracker.set_state(TrainingState.LOADING)
        report = load_examples(rt.dataset_path, str(spec.dataset.format))
        for line in report.lines():
            log(line)
        # the carbon of all that follows (model load included); earlier attempts' energy is
        # added once the checkpoint is read. The spec's country/region win over the runtime's.
        from model_garden.carbon.tracker import EnergySplit, TrainingCarbonTracker

        carbon = TrainingCarbonTracker(
            spec.carbon.country or rt.country, spec.carbon.region or rt.region
        )
        carbon.start()
        import torch

        threads = rt.threads or default_threads()
        torch.set_num_threads(threads)
        from .backends import (
            BackendUnavailable,
            import_unsloth,
            load,
            probe_unsloth,
            select_backend,
            unsloth_installed,
        )

        try:
            backend, why = select_backend(
                str(spec.backend), torch.cuda.is_available(), unsloth_installed()
            )
        except BackendUnavailable as exc:
            return finish(failure("BackendUnavailable", str(exc), **_ident(base)), EXIT_FAILED)
        if backend == "unsloth":
            base.backend = backend
            problem = probe_unsloth()
            if problem and str(spec.backend) == "auto":
                backend, why = "transformers", f"auto: Unsloth unusable here ({problem})"
            elif problem:
                msg = f"backend unsloth was requested but {problem}; use backend transformers"
                return finish(failure("BackendUnavailable", msg, **_ident(base)), EXIT_FAILED)
            else:
                import_unsloth()
        base.backend = backend
        from transformers import AutoTokenizer

        from .backends import _adapter_base, resolve_base
        from .tokenize import resolve_template, tokenize_examples

        source, kwargs, is_adapter = resolve_base(config)
        tokenizer = AutoTokenizer.from_pretrained(source, **kwargs)
        if tokenizer.pad_token_id is None:
            tokenizer.pad_token = tokenizer.eos_token
        template, template_source = resolve_template(tokenizer, spec.dataset.chat_template)
        tokenizer.chat_template = template  # saved with every artifact
        train_idx, eval_idx = split_eval(
            len(report.examples), decimal_value(spec.dataset.eval_split), hp.seed
        )
        tok_train = tokenize_examples(
            [report.examples[i] for i in train_idx],
            tokenizer,
            spec.dataset.max_seq_length,
            template,
            spec.dataset.completion_only_loss,
        )
        tok_eval = tokenize_examples(
            [report.examples[i] for i in eval_idx],
            tokenizer,
            spec.dataset.max_seq_length,
            template,
            spec.dataset.completion_only_loss,
        )
        log(
            "tokenized",
            template=template_source,
            train=tok_train.stats(),
            eval=tok_eval.stats(),
            truncated_lines=tok_train.truncated_lines,
        )
        if not tok_train.input_ids:
            raise DatasetError(rt.dataset_path, None, None, "no trainable example after tokenizing")
        if flag.reason:
            return finish(_terminated(base, 0), EXIT_TERMINATED)

        # 2. the model
        from .batching import steps_per_epoch, total_steps

        loaded = load(config, backend, why)
        base.base_model = loaded.base_model if not is_adapter else _adapter_base(source)
        model = loaded.model
        from .backends import describe_weights

        log(
            "model",
            backend=backend,
            why=why,
            device=loaded.device,
            dtype=loaded.dtype,
            threads=threads,
            weights=describe_weights(model),
        )
        n_train = len(tok_train.input_ids)
        spe = steps_per_epoch(n_train, hp.batch_size, hp.gradient_accumulation_steps)
        total = total_steps(
            n_train, hp.batch_size, hp.gradient_accumulation_steps, hp.epochs, hp.max_steps
        )
        from transformers import get_scheduler

        params = [p for p in model.parameters() if p.requires_grad]
        optimizer = torch.optim.AdamW(
            params, lr=decimal_value(hp.learning_rate), weight_decay=decimal_value(hp.weight_decay)
        )
        scheduler = get_scheduler(
            str(hp.lr_scheduler),
            optimizer,
            num_warmup_steps=math.ceil(total * decimal_value(hp.warmup_ratio)),
            num_training_steps=total,
        )

        # 3. resume
        from .loop import Interrupted, LoopState, evaluate, train

        key_inputs = runkey.key_inputs(config, runkey.dataset_digest(rt.dataset_path))
        key = runkey.run_key(key_inputs)
        ckpt_root = ownership.claim(runkey.run_dir(rt.checkpoint_dir, key), owner)
        runkey.write_key_file(ckpt_root, key, key_inputs)
        removed = checkpoints.clean_partial(ckpt_root)
        if removed:
            log("removed incomplete checkpoints", paths=[str(p) for p in removed])
        state = LoopState()
        previous = EnergySplit()
        latest = checkpoints.latest_checkpoint(ckpt_root)
        full = method == "full"
        if latest is not None:
            saved = checkpoints.load(latest, model, optimizer, scheduler, full)
            state = LoopState(
                step=int(saved["step"]),
                tokens=int(saved.get("tokens", 0)),
                losses=list(saved.get("losses", [])),
                initial_eval_loss=saved.get("initialEvalLoss"),
                eval_loss=saved.get("evalLoss"),
                train_seconds=float(saved.get("trainSeconds", 0.0)),
            )
            previous = EnergySplit(**saved.get("energy", {}))
            base.resumed_from_step = state.step
            log("resumed", checkpoint=str(latest), step=state.step)
        carbon.previous = previous
        tracker.resume_at(total, state.step, state.tokens)
        pad_id = int(tokenizer.pad_token_id)
        eval_every = spec.checkpointing.every_steps
        if state.initial_eval_loss is None:
            tracker.set_state(TrainingState.EVALUATING)
            state.initial_eval_loss = evaluate(
                model, tok_eval.input_ids, tok_eval.labels, hp.batch_size, pad_id, loaded.device
            )
            log("initial eval", eval_loss=state.initial_eval_loss)
            if state.initial_eval_loss is not None:
                tracker.set_eval_loss(state.initial_eval_loss)
        budget = decimal_value(spec.carbon.budget_kg) if spec.carbon.budget_kg else None

        def save_checkpoint(st: LoopState) -> None:
            energy = carbon.energy()
            path = checkpoints.save(
                ckpt_root,
                st.step,
                model,
                optimizer,
                scheduler,
                {
                    "tokens": st.tokens,
                    "losses": st.losses,
                    "initialEvalLoss": st.initial_eval_loss,
                    "evalLoss": st.eval_loss,
                    "trainSeconds": st.train_seconds,
                    "energy": {
                        "cpu_kwh": energy.cpu_kwh,
                        "gpu_kwh": energy.gpu_kwh,
                        "ram_kwh": energy.ram_kwh,
                    },
                    "totalSteps": total,
                },
                full,
            )
            pruned = checkpoints.prune(ckpt_root, spec.checkpointing.keep)
            log("checkpoint", path=str(path), pruned=[p.name for p in pruned])

        def on_step(st: LoopState, loss: float, lr: float, tokens: int, epoch: float) -> None:
            tracker.step_done(st.step, epoch, loss, lr, tokens)
            rep = carbon.report()
            tracker.set_carbon(rep.energy_kwh, rep.emissions_kg, str(rep.method))
            if st.step % eval_every == 0 and st.step < total:  # the last step saves artifacts
                st.eval_loss = evaluate(
                    model, tok_eval.input_ids, tok_eval.labels, hp.batch_size, pad_id, loaded.device
                )
                if st.eval_loss is not None:
                    tracker.set_eval_loss(st.eval_loss)
                save_checkpoint(st)
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
            if budget is not None and rep.emissions_kg > budget and not flag.reason:
                flag.reason = "CarbonBudgetExceeded"

        tracker.start_training()
        try:
            state = train(
                model,
                tok_train.input_ids,
                tok_train.labels,
                batch_size=hp.batch_size,
                accumulation=hp.gradient_accumulation_steps,
                seed=hp.seed,
                group_by_length=spec.dataset.packing,
                total_steps=total,
                steps_per_epoch=spe,
                optimizer=optimizer,
                scheduler=scheduler,
                pad_id=pad_id,
                device=loaded.device,
                state=state,
                on_step=on_step,
                should_stop=flag,
            )
        except Interrupted as stop:
            tracker.set_state(TrainingState.SAVING)
            if not (ckpt_root / f"checkpoint-{state.step}").exists() and state.step > 0:
                save_checkpoint(state)
            base.metrics = _metrics(state, spe, tok_train.truncated)
            if stop.reason == "CarbonBudgetExceeded":
                msg = f"emissions passed the budget of {budget} kg CO2e at step {state.step}"
                return finish(
                    base.model_copy(update={"reason": stop.reason, "message": msg}), EXIT_FAILED
                )
            return finish(_terminated(base, state.step), EXIT_TERMINATED)

        # 4. final eval and artifacts
        tracker.set_state(TrainingState.EVALUATING)
        state.eval_loss = evaluate(
            model, tok_eval.input_ids, tok_eval.labels, hp.batch_size, pad_id, loaded.device
        )
        if state.eval_loss is not None:
            tracker.set_eval_loss(state.eval_loss)
        log("final eval", eval_loss=state.eval_loss, initial=state.initial_eval_loss)
        tracker.set_state(TrainingState.SAVING)
        metrics = _metrics(state, spe, tok_train.truncated)
        from .artifacts import hardware_name, save_artifacts

        artifacts = save_artifacts(
            config,
            loaded,
            tokenizer,
            metrics,
            carbon.stop,  # the final figure, merge included: the cards and the result agree
            hardware_name(loaded.device, threads),
            output_dir,
        )
        result = base.model_copy(
            update={
                "outcome": Outcome.SUCCEEDED,
                "reason": "Completed",
                "message": f"{state.step} steps; eval loss {state.initial_eval_loss} -> {state.eval_loss}",
                "metrics": metrics,
                "artifacts": artifacts,
            }
        )
        return finish(result, 0)
    except (DatasetError, DatasetErrors) as exc:
        bad = failure("DatasetError", str(exc), **_ident(base))
        return finish(bad, exit_code(bad))
    except ownership.NotOurs as exc:
        log("refused", path=str(exc.path), owner=exc.found)
        bad = failure(ownership.REASON, str(exc), **_ident(base))
        return finish(bad, exit_code(bad))
    except checkpoints.CheckpointRefused as exc:
        log("refused", error=str(exc))
        bad = failure(checkpoints.REFUSED, str(exc), **_ident(base))
        return finish(bad, exit_code(bad))
    except Exception as exc:  # every failure still reports a result
        kind = type(exc).__name__
        reason = "BackendUnavailable" if kind == "BackendUnavailable" else "TrainingError"
        log("failed", error=f"{kind}: {exc}")
        return finish(failure(reason, f"{kind}: {exc}", **_ident(base)), EXIT_FAILED)
    finally:
        if server is not None:
            server.stop()


def _ident(base: TrainingResult) -> dict[str, Any]:
    return {
        "backend": base.backend,
        "method": base.method,
        "base_model": base.base_model,
        "resumed_from_step": base.resumed_from_step,
        "metrics": base.metrics,
    }


def _terminated(base: TrainingResult, step: int) -> TrainingResult:
    return base.model_copy(
        update={
            "reason": "Terminated",
            "message": f"SIGTERM at step {step}: checkpoint saved; a rerun resumes from it",
        }
    )


def _metrics(state: Any, spe: int, truncated: int) -> TrainingMetrics:
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


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m model_garden.training", description=__doc__)
    parser.add_argument("--config", required=True, help="TrainingConfig JSON file")
    args = parser.parse_args(argv)
    try:
        config = read_document(TrainingConfig, args.config)
    except (OSError, ValueError) as exc:
        result = failure("InvalidConfig", f"{args.config}: {exc}")
        print(result.to_termination_message(), file=sys.stderr)
        return EXIT_INVALID_CONFIG
    result, code = run(config)
    log("result", outcome=result.outcome, reason=result.reason, detail=result.message)
    return code
