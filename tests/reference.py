"""Plain float64 references shared by the numerics tests (no log space, no certificates)."""
import math

import numpy as np
import torch

from explorer.cells import build_cell, make_inputs


def plain_product_norms(cfg) -> dict[str, np.ndarray]:
    """log10 norms of dz_s/dz_t for every pair t <= s, by a plain float64 product and
    torch.linalg.matrix_norm: "spectral", "frobenius" and, for the LSTM, "cell_spectral"
    (the c -> c block). NaN below the diagonal."""
    cfg = cfg.replace(dtype="float64")
    cell = build_cell(cfg)
    with torch.no_grad():
        tr = cell.run(make_inputs(cfg))
    J = cell.jacobians(tr, torch.arange(1, cfg.seq_len + 1))[:, 0]
    T, m, n = cfg.seq_len, cell.state_size, cfg.hidden
    out = {k: np.full((T + 1, T + 1), np.nan) for k in ("spectral", "frobenius", "cell_spectral")}
    for t in range(T + 1):
        P = torch.eye(m, dtype=torch.float64)
        for s in range(t, T + 1):
            if s > t:
                P = J[s - 1] @ P
            out["spectral"][t, s] = math.log10(torch.linalg.matrix_norm(P, ord=2))
            out["frobenius"][t, s] = math.log10(torch.linalg.matrix_norm(P))
            if m > n:
                out["cell_spectral"][t, s] = math.log10(torch.linalg.matrix_norm(P[n:, n:], ord=2))
    return out
