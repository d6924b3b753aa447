"""The operator's Prometheus metrics: reconciliations, errors, conditions, energy and emissions."""

from __future__ import annotations

from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, start_http_server

CONDITION_TYPES = ("Ready", "Running", "Succeeded", "Failed", "Progressing")
JOULES_PER_KWH = 3.6e6
BUDGET_REASON = "CarbonBudgetExceeded"
"""The Failed condition's reason when a FineTuneJob was stopped by ``spec.carbon.budgetKg``."""


class OperatorMetrics:
    """One set of metrics per operator run (its own registry, so restarts in tests are clean)."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.reconciliations = Counter(
            "modelgarden_operator_reconciliations_total",
            "Reconciliations by kind.",
            ["kind"],
            registry=self.registry,
        )
        self.errors = Counter(
            "modelgarden_operator_reconcile_errors_total",
            "Reconciliations that raised, by kind.",
            ["kind"],
            registry=self.registry,
        )
        self.conditions = Gauge(
            "modelgarden_resources",
            "Resources by kind, condition type and status.",
            ["kind", "condition", "status"],
            registry=self.registry,
        )
        self.job_energy = Gauge(
            "modelgarden_finetunejob_energy_joules",
            "Energy a FineTuneJob used so far (from status.carbon).",
            ["namespace", "name"],
            registry=self.registry,
        )
        self.job_emissions = Gauge(
            "modelgarden_finetunejob_emissions_grams",
            "Emissions of a FineTuneJob so far, g CO2e.",
            ["namespace", "name"],
            registry=self.registry,
        )
        self.job_budget_exceeded = Gauge(
            "modelgarden_finetunejob_carbon_budget_exceeded",
            "1 while a FineTuneJob stands stopped by spec.carbon.budgetKg"
            " (Failed, reason CarbonBudgetExceeded), else 0.",
            ["namespace", "name"],
            registry=self.registry,
        )
        self.model_emissions = Gauge(
            "modelgarden_modelversion_lifetime_emissions_grams",
            "Training plus serving emissions of a ModelVersion, g CO2e.",
            ["namespace", "name", "model"],
            registry=self.registry,
        )
        self.serving_energy = Gauge(
            "modelgarden_inferencedeployment_energy_joules",
            "Energy an InferenceDeployment used (status.carbon).",
            ["namespace", "name"],
            registry=self.registry,
        )
        self.serving_emissions = Gauge(
            "modelgarden_inferencedeployment_emissions_grams",
            "Emissions of an InferenceDeployment, g CO2e.",
            ["namespace", "name"],
            registry=self.registry,
        )
        self._server: Any = None

    def serve(self, port: int, addr: str = "0.0.0.0") -> None:
        if port:
            server, _thread = start_http_server(port, addr=addr, registry=self.registry)
            self._server = server

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def _per_resource(self, kind: str) -> list[Gauge]:
        """The gauges with one series per resource of ``kind`` (labelled namespace, name)."""
        return {
            "FineTuneJob": [self.job_energy, self.job_emissions, self.job_budget_exceeded],
            "InferenceDeployment": [self.serving_energy, self.serving_emissions],
            "ModelVersion": [self.model_emissions],
        }.get(kind, [])

    def forget(self, kind: str, namespace: str, name: str) -> None:
        """Remove every series of a deleted resource (else /metrics reports it forever).

        Works on prometheus_client's public ``collect()``/``remove()``, whatever other labels a
        series carries (a ModelVersion's ``model``).
        """
        for gauge in self._per_resource(kind):
            for labels in _series_labels(gauge):
                if labels.get("namespace") == namespace and labels.get("name") == name:
                    gauge.remove(*labels.values())  # samples list labels in label order

    def _forget_absent(self, kind: str, present: set[tuple[str, str]]) -> None:
        for gauge in self._per_resource(kind):
            for labels in _series_labels(gauge):
                key = (labels.get("namespace", ""), labels.get("name", ""))
                if key not in present:
                    gauge.remove(*labels.values())  # samples list labels in label order

    def observe_statuses(self, kind: str, bodies: list[dict[str, Any]]) -> None:
        """Recount resources per condition and refresh the carbon gauges from their statuses.

        ``bodies`` are all resources of ``kind``: series of resources not among them are removed.
        """
        self._forget_absent(
            kind,
            {
                (
                    (b.get("metadata") or {}).get("namespace", ""),
                    (b.get("metadata") or {}).get("name", ""),
                )
                for b in bodies
            },
        )
        counts: dict[tuple[str, str], int] = {
            (t, s): 0 for t in CONDITION_TYPES for s in ("True", "False", "Unknown")
        }
        for body in bodies:
            status = body.get("status") or {}
            for cond in status.get("conditions") or []:
                key = (cond.get("type", ""), cond.get("status", "Unknown"))
                counts[key] = counts.get(key, 0) + 1
            meta = body.get("metadata") or {}
            ns, name = meta.get("namespace", ""), meta.get("name", "")
            carbon = status.get("carbon") or {}
            if kind == "FineTuneJob":
                self.job_budget_exceeded.labels(ns, name).set(
                    1.0 if budget_exceeded(status) else 0.0
                )
            if kind == "FineTuneJob" and carbon:
                self.job_energy.labels(ns, name).set(
                    float(carbon.get("energyKwh", 0)) * JOULES_PER_KWH
                )
                self.job_emissions.labels(ns, name).set(float(carbon.get("emissionsKg", 0)) * 1000)
            elif kind == "InferenceDeployment" and carbon:
                self.serving_energy.labels(ns, name).set(
                    float(carbon.get("energyKwh", 0)) * JOULES_PER_KWH
                )
                self.serving_emissions.labels(ns, name).set(
                    float(carbon.get("emissionsKg", 0)) * 1000
                )
            elif kind == "ModelVersion" and status.get("lifetimeEmissionsKg") is not None:
                model = (body.get("spec") or {}).get("model", "")
                self.model_emissions.labels(ns, name, model).set(
                    float(status["lifetimeEmissionsKg"]) * 1000
                )
        for (ctype, cstatus), count in counts.items():
            self.conditions.labels(kind, ctype, cstatus).set(count)


def budget_exceeded(status: dict[str, Any]) -> bool:
    """Stopped by its carbon budget and not resuming (a raised budget resumes the job: its
    Failed condition stays until the new run starts, but Running then says ``Resuming``)."""
    conds = {c.get("type"): c for c in status.get("conditions") or []}
    failed, running = conds.get("Failed") or {}, conds.get("Running") or {}
    if failed.get("status") != "True" or failed.get("reason") != BUDGET_REASON:
        return False
    return running.get("status") != "True" and running.get("reason") != "Resuming"


def _series_labels(gauge: Gauge) -> list[dict[str, str]]:
    """The label sets of a labelled gauge's series (from its public collect())."""
    out = []
    for metric in gauge.collect():
        for sample in metric.samples:
            out.append(dict(sample.labels))
    return out
