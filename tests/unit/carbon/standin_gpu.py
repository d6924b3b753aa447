"""A stand-in for GPUs that are not here, with zeus's ``GPUs`` interface (zeus 0.16)."""

from __future__ import annotations


class StandInGpus:
    """Stands in for the GPUs this machine does not have (no NVIDIA or AMD board, no driver):
    the part of ``zeus.device.gpu.common.GPUs`` the meter and the trainer read, with each
    board's energy counter (mJ since the driver loaded) and average power (mW) set by the test.
    On a machine with a GPU the same code reads the real boards through ``zeus.device.get_gpus``.
    """

    def __init__(self, counters_mj: list[int | None], power_mw: list[int] | None = None) -> None:
        self.counters_mj = list(counters_mj)
        """``None``: a board without an energy counter (older than Volta): power only."""
        self.power_mw = list(power_mw or [0] * len(counters_mj))
        self.broken = False
        """True: every read fails as NVML does for a GPU that fell off the bus."""

    def __len__(self) -> int:
        return len(self.counters_mj)

    def supports_get_total_energy_consumption(self, gpu_index: int) -> bool:
        return self.counters_mj[gpu_index] is not None

    def get_total_energy_consumption(self, gpu_index: int) -> int:
        value = self.counters_mj[gpu_index]
        if self.broken:
            raise RuntimeError("NVML_ERROR_GPU_IS_LOST")
        if value is None:
            raise RuntimeError("NVML_ERROR_NOT_SUPPORTED")
        return value

    def get_average_power_usage(self, gpu_index: int) -> int:
        if self.broken:
            raise RuntimeError("NVML_ERROR_GPU_IS_LOST")
        return self.power_mw[gpu_index]
