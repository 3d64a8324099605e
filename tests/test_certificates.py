"""The spectral-norm certificates of explorer.jacobian.certificates on matrices with known singular values."""
import math

import pytest
import torch

from explorer.jacobian import Certificate, Plan, Tally, certified_spectral
from explorer.jacobian.certificates import _unit_start


def _with_spectrum(sigma: torch.Tensor, seed: int) -> torch.Tensor:
    """S = U diag(sigma) V^T (B, m, m) in float64, U and V Haar-orthogonal."""
    gen = torch.Generator().manual_seed(seed)
    B, m = sigma.shape
    U = torch.linalg.qr(torch.randn(B, m, m, generator=gen, dtype=torch.float64))[0]
    V = torch.linalg.qr(torch.randn(B, m, m, generator=gen, dtype=torch.float64))[0]
    return U @ (sigma[:, :, None] * V.transpose(1, 2))


def _spectra(kind: str, B: int, m: int) -> torch.Tensor:
    gen = torch.Generator().manual_seed(1)
    j = torch.arange(m, dtype=torch.float64)
    if kind == "flat":  # a short lag: the top of the spectrum is crowded
        decay = torch.full((B, 1), 0.999, dtype=torch.float64)
    elif kind == "moderate":  # the middle lags: a few leading directions over a long flat tail,
        # whose trace (about 1.4) exceeds sigma_1^2 = 1 while its tr(G^2)^(1/2) (about 0.2) does not
        top = torch.tensor([1.0, 0.5, 0.25], dtype=torch.float64).expand(B, 3)
        tail = torch.full((B, m - 3), 0.03, dtype=torch.float64)
        sigma2 = torch.cat([top, tail], 1) * (1 + 0.01 * torch.rand(B, m, generator=gen, dtype=torch.float64))
        return sigma2.sqrt().sort(dim=1, descending=True).values
    else:  # long lags: one dominant direction
        decay = 0.3 + 0.2 * torch.rand(B, 1, generator=gen, dtype=torch.float64)
    sigma = decay ** j * (1 + 0.01 * torch.rand(B, m, generator=gen, dtype=torch.float64))
    return sigma.sort(dim=1, descending=True).values


@pytest.mark.parametrize("dtype,rtol", [(torch.float64, 1e-9), (torch.float32, 1e-5)])
@pytest.mark.parametrize("kind", ["flat", "moderate", "dominant"])
def test_certified_sigma_is_within_rtol_below_and_never_above(kind, dtype, rtol):
    B, m = 40, 48
    sigma = _spectra(kind, B, m)
    S64 = _with_spectrum(sigma, seed=2)
    S = S64.to(dtype)
    F = torch.linalg.matrix_norm(S)
    S = S / F[:, None, None]
    exact = torch.linalg.matrix_norm(S.double(), ord=2)  # of the matrix actually passed in
    tally = Tally()
    sigma2, _ = certified_spectral(S, _unit_start(B, m, dtype, "cpu"), torch.ones(B, dtype=dtype), rtol, tally)
    got = sigma2.double().sqrt()
    rounding = 4 * m * torch.finfo(dtype).eps  # the Gram matrix and LAPACK round
    assert (got <= exact * (1 + rounding)).all()
    assert (got >= exact / (1 + rtol) * (1 - rounding)).all()
    assert tally.certified + tally.exact == B


def test_each_certificate_is_used_where_it_should_be():
    B, m, rtol = 40, 48, 1e-9
    used = {}
    for kind in ("flat", "moderate", "dominant"):
        S = _with_spectrum(_spectra(kind, B, m), seed=3)
        S = S / torch.linalg.matrix_norm(S)[:, None, None]
        tally = Tally()
        # a cold start: in all_pairs each block is warm from the previous lag
        certified_spectral(S, _unit_start(B, m, S.dtype, "cpu"), torch.ones(B, dtype=S.dtype), rtol, tally,
                           Plan(ritz_steps=8))
        used[kind] = tally
    assert used["dominant"].power + used["dominant"].ritz == B  # the residual bound with the trace of the complement
    assert used["moderate"].moment > B // 2  # the trace fails, tr(G^2) of the complement does not
    # no residual bound on a crowded top: the Gram matrix's Cholesky, after the refined Ritz value
    assert used["flat"].refined + used["flat"].cholesky + used["flat"].exact > B // 2


def test_moment_bound_on_a_hand_made_case():
    """sigma^2 = (1, 0.1 x 41): the complement of the top vector has trace 4.1 > 1, so the
    trace bound fails, but tr(C^2)^(1/2) = 0.64 < 1, so the moment bound certifies the top."""
    m = 42
    sigma = torch.tensor([1.0] + [0.1 ** 0.5] * 41, dtype=torch.float64)[None]
    S = _with_spectrum(sigma, seed=4)
    F2 = (S * S).sum((1, 2))
    tally = Tally()
    sigma2, _ = certified_spectral(S, _unit_start(1, m, S.dtype, "cpu"), F2, 1e-9, tally, Plan(ritz_steps=8))
    assert tally.moment == 1
    assert math.isclose(float(sigma2), 1.0, rel_tol=2e-9)


@pytest.mark.parametrize("plan", [Plan(ritz_steps=1).without(Certificate.CHOLESKY), Plan.FULL], ids=["one-step", "full"])
def test_mixed_batch_each_row_gets_its_own_certificate(plan):
    """Rows that the first bound settles and rows that go on to the Gram matrix, in one batch."""
    B, m, rtol = 20, 32, 1e-9
    sigma = torch.cat([_spectra("dominant", B // 2, m), _spectra("flat", B // 2, m)])
    S = _with_spectrum(sigma, seed=5)
    S = S / torch.linalg.matrix_norm(S)[:, None, None]
    exact = torch.linalg.matrix_norm(S, ord=2)
    # warm blocks as from a previous lag: near the top right singular vectors
    gen = torch.Generator().manual_seed(6)
    near = torch.linalg.svd(S).Vh[:, :4] + 1e-6 * torch.randn(B, 4, m, generator=gen, dtype=S.dtype)
    warm = torch.linalg.qr(near.transpose(1, 2))[0].transpose(1, 2)
    tally = Tally()
    sigma2, _ = certified_spectral(S, warm, torch.ones(B, dtype=S.dtype), rtol, tally, plan)
    got = sigma2.sqrt()
    assert tally.power + tally.ritz == B // 2  # the trace bound settles the dominant half only
    assert (got <= exact * (1 + 1e-13)).all() and (got >= exact / (1 + rtol)).all()


@pytest.mark.parametrize("dtype,rtol", [(torch.float64, 1e-9), (torch.float32, 1e-5)])
def test_power_step_settles_one_dominant_direction_from_a_warm_start(dtype, rtol):
    B, m = 30, 40
    S = _with_spectrum(_spectra("dominant", B, m), seed=7)
    S = (S / torch.linalg.matrix_norm(S)[:, None, None]).to(dtype)
    exact = torch.linalg.matrix_norm(S.double(), ord=2)
    gen = torch.Generator().manual_seed(8)
    near = torch.linalg.svd(S.double()).Vh[:, :4] + 1e-6 * torch.randn(B, 4, m, generator=gen, dtype=torch.float64)
    warm = torch.linalg.qr(near.transpose(1, 2))[0].transpose(1, 2).to(dtype)
    tally = Tally()
    sigma2, V = certified_spectral(S, warm, torch.ones(B, dtype=dtype), rtol, tally)
    assert tally.power == B
    got = sigma2.double().sqrt()
    rounding = 4 * m * torch.finfo(dtype).eps
    assert (got <= exact * (1 + rounding)).all() and (got >= exact / (1 + rtol) * (1 - rounding)).all()
    # the first row moved towards the top right singular vector
    top = torch.linalg.svd(S.double()).Vh[:, 0]
    assert ((V[:, 0].double() * top).sum(1).abs() > 1 - 1e-6).all()


def test_block_left_by_a_power_step_is_orthonormalised_before_rayleigh_ritz():
    """A power step moves the block's first row to G v / |G v| and leaves the others: the rows
    are no longer orthonormal. Passed on with ``Plan.orthonormal`` False (as all_pairs does after a
    power step), the Ritz values are still lower bounds within rtol, and the block comes back
    orthonormal."""
    B, m, rtol = 30, 32, 1e-9
    sigma = torch.cat([_spectra("dominant", B // 2, m), _spectra("flat", B - B // 2, m)])
    S = _with_spectrum(sigma, seed=9)
    S = S / torch.linalg.matrix_norm(S)[:, None, None]
    exact = torch.linalg.matrix_norm(S, ord=2)
    V = _unit_start(B, m, S.dtype, "cpu")
    moved = V[:, 0] + 0.8 * V[:, 1]
    V[:, 0] = moved / torch.linalg.vector_norm(moved, dim=1, keepdim=True)  # unit, 0.62 along row 1
    tally = Tally()
    sigma2, V = certified_spectral(S, V, torch.ones(B, dtype=S.dtype), rtol, tally,
                                   Plan.NO_POWER.replace(orthonormal=False))
    got = sigma2.sqrt()
    assert tally.ritz > 0 and tally.exact + tally.cholesky + tally.refined > 0
    assert (got <= exact * (1 + 1e-13)).all() and (got >= exact / (1 + rtol)).all()
    torch.testing.assert_close(V @ V.transpose(1, 2), torch.eye(4, dtype=S.dtype).expand(B, 4, 4))


def test_certificates_are_listed_once_tally_plan_and_docs_follow():
    import dataclasses

    names = [how.value for how in Certificate]
    assert names == ["power", "ritz", "moment", "cholesky", "refined", "exact"]  # cheapest first
    assert [f.name for f in dataclasses.fields(Tally)] == names
    assert Tally(power=1, ritz=2, moment=3, cholesky=4, refined=6, exact=5).certified == 16
    for i, name in enumerate(names):
        assert f"{i}. ``{name}``" in certified_spectral.__doc__ and f"``{name}``" in Tally.__doc__
    assert "<certificates>" not in certified_spectral.__doc__
    assert Plan.FULL.tries == frozenset(Certificate) and Plan() == Plan.FULL
    assert not Plan.FLAT.uses(Certificate.POWER) and not Plan.FLAT.uses(Certificate.CHOLESKY) and Plan.FLAT.ritz_steps == 1
    assert Plan.NO_POWER.tries == frozenset(Certificate) - {Certificate.POWER}
    assert Plan(tries={"ritz", "exact"}).tries == {Certificate.RITZ, Certificate.EXACT}  # by the Tally's names too
    for bad in (dict(tries={Certificate.POWER, Certificate.EXACT}), dict(tries=set(Certificate) - {Certificate.EXACT}),
                dict(ritz_steps=0)):
        with pytest.raises(ValueError):
            Plan(**bad)


@pytest.mark.parametrize("plan", [Plan.FULL, Plan.NO_POWER, Plan.FLAT, Plan(tries={"ritz", "exact"}, ritz_steps=2)],
                         ids=["full", "no-power", "flat", "ritz-then-exact"])
def test_a_plan_uses_only_its_certificates_and_stays_within_rtol(plan):
    B, m, rtol = 30, 32, 1e-9
    sigma = torch.cat([_spectra(kind, B // 3, m) for kind in ("flat", "moderate", "dominant")])
    S = _with_spectrum(sigma, seed=10)
    S = S / torch.linalg.matrix_norm(S)[:, None, None]
    exact = torch.linalg.matrix_norm(S, ord=2)
    gen = torch.Generator().manual_seed(11)
    near = torch.linalg.svd(S).Vh[:, :4] + 1e-6 * torch.randn(B, 4, m, generator=gen, dtype=S.dtype)
    warm = torch.linalg.qr(near.transpose(1, 2))[0].transpose(1, 2)
    tally = Tally()
    sigma2, _ = certified_spectral(S, warm, torch.ones(B, dtype=S.dtype), rtol, tally, plan)
    for how in Certificate:
        if not plan.uses(how):
            assert getattr(tally, how.value) == 0, (how, tally)
    assert tally.certified + tally.exact == B
    got = sigma2.sqrt()
    assert (got <= exact * (1 + 1e-13)).all() and (got >= exact / (1 + rtol)).all()


@pytest.mark.parametrize("m", [48, 64, 128, 160])
def test_blocked_positive_definite_agrees_with_lapack_cholesky(m):
    """The batched blocked factorisation (m >= 64 on the CPU) and LAPACK's answer the same question,
    for shifts a hair above and below the top eigenvalue (the certificate's use) and one below zero."""
    from explorer.jacobian.certificates import _positive_definite

    gen = torch.Generator().manual_seed(m)
    S = torch.randn(24, m, m, generator=gen, dtype=torch.float64)
    G = S.transpose(1, 2) @ S
    top = torch.linalg.eigvalsh(G)[:, -1]
    for dtype in (torch.float64, torch.float32):
        for factor in (1 + 1e-4, 1 - 1e-4, 2.0, 0.5):
            shifted = -G
            shifted.diagonal(dim1=1, dim2=2).add_((top * factor)[:, None])
            shifted = shifted.to(dtype)
            want = torch.linalg.cholesky_ex(shifted)[1] == 0
            assert torch.equal(_positive_definite(shifted), want), (dtype, factor)
            assert bool(want.all()) == (factor > 1)


@pytest.mark.parametrize("dtype,rtol", [(torch.float64, 1e-9), (torch.float32, 1e-5)])
@pytest.mark.parametrize("m", [48, 128])
def test_refined_settles_a_crowded_top_from_a_cold_start(dtype, rtol, m):
    """The short lags' case: sigma_1 .. sigma_8 within a few per cent (a random square matrix's top). From one
    Ritz step on a cold block no bound holds, the refined value does; within rtol below the exact norm, never above."""
    B = 32
    gen = torch.Generator().manual_seed(7)
    S64 = torch.randn(B, m, m, generator=gen, dtype=torch.float64)
    S64 = S64 / torch.linalg.matrix_norm(S64)[:, None, None]
    S = S64.to(dtype)
    exact = torch.linalg.matrix_norm(S.double(), ord=2)
    tally = Tally()
    sigma2, V = certified_spectral(S, _unit_start(B, m, dtype, "cpu"), torch.ones(B, dtype=dtype), rtol, tally, Plan.FLAT)
    assert tally.refined >= B - 1 and tally.refined + tally.exact + tally.ritz + tally.moment == B, tally
    got = sigma2.double().sqrt()
    rounding = 4 * m * torch.finfo(dtype).eps
    assert (got <= exact * (1 + rounding)).all() and (got >= exact / (1 + rtol) * (1 - rounding)).all()
    torch.testing.assert_close(V @ V.transpose(1, 2), torch.eye(4, dtype=dtype).expand(B, 4, 4),
                               atol=10 * torch.finfo(dtype).eps * m, rtol=0)  # the next lag's warm block
