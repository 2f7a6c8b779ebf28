"""RecVAE in Keras 3 against EASE, alone and blended with RDLAE, over seeds.

Exploratory, not a product model: it answers "does RecVAE, the issue's other named
Keras candidate, match EASE alone or significantly improve the best linear model in a
blend (issue 20)?" on the binary-positives protocol of ``bench/movielens_seeds.py``
(ratings >= 4 of weight 1, users with >= 5, per-user random 80/10/10 split, full ranking
without training items).

RecVAE (Shenbin et al. 2020), written here with Keras layers and a stateless JAX training
step: the L2-normalised row with input dropout 0.5 goes through five densely connected
600-unit layers (SiLU, layer normalisation) to a 200-dimensional Gaussian; a linear
decoder gives multinomial logits. The KL term is taken against a composite prior (the
standard normal, the previous epoch's posterior of the same user, a normal of variance
e^10; weights 3/20, 15/20, 2/20) and scaled by ``gamma`` times the user's number of items.
Each epoch updates the encoder three passes and then the decoder one pass (clean input).

Per seed: EASE (λ grid) and RDLAE (``bench/linear_variants.py``'s grid) are searched on
validation NDCG@10; RecVAE searches ``gamma`` and the number of epochs (checkpoints of
one training per ``gamma``); the blend adds ``w`` x RecVAE to RDLAE (scores standardised
per user) with ``w`` chosen on validation. Every choice is refitted on train + validation
and scored on test; differences are paired per user and pooled over seeds with the
stratified interval of ``fastinsight.recsys.evaluation.seeds``.
Writes ``bench/results/recvae_study.{json,md}``.

    .venv/bin/python bench/recvae_study.py                 # seeds 0-3
"""

from __future__ import annotations

import itertools
import math
import time
from collections.abc import Callable
from typing import Any

import numpy as np
import scipy.sparse as sp

from _common import (
    BINARY_PROTOCOL,
    binary_seed_runs,
    drop_per_user,
    ndcg_recall_at_10,
    paired_to_reference,
    publish_study,
    seed_split,
    seeds_parser,
    study_table,
)
from linear_variants import DROPOUT, EASE_L2, XI, Fit

GAMMA = (0.005, 0.01, 0.02, 0.05)
CHECKPOINTS = (20, 35, 50, 70, 100)
BLEND_W = (0.0, 0.1, 0.2, 0.3, 0.5, 0.8, 1.2, 1.8, 2.7)
HIDDEN, LATENT, INPUT_DROPOUT, LEARNING_RATE, BATCH, ENCODER_PASSES = 600, 200, 0.5, 5e-4, 64, 3
Scorer = Callable[[sp.csr_matrix], np.ndarray]
# the grid of each element of a family's configuration, for the edge report (RDLAE's is
# linear_variants' and reported there)
GRIDS: dict[str, tuple[tuple[Any, ...], ...]] = {
    "ease": (EASE_L2,), "recvae": (GAMMA, CHECKPOINTS), "blend": (GAMMA, CHECKPOINTS, BLEND_W)}


def on_edge(family: str, config: tuple[Any, ...]) -> list[str]:
    """The configuration's values that are the lowest or highest of their grid."""
    names = {"ease": ("l2",), "recvae": ("gamma", "epochs"), "blend": ("gamma", "epochs", "w")}
    out = []
    for name, value, grid in zip(names.get(family, ()), config, GRIDS.get(family, ()),
                                 strict=False):
        if value is not None and value in (min(grid), max(grid)) and not (
                name == "w" and value == 0.0):
            out.append(f"{name}={value:g}")
    return out


def _standardised(scores: np.ndarray) -> np.ndarray:
    s = np.asarray(scores, dtype=np.float64)
    out: np.ndarray = (s - s.mean(axis=1, keepdims=True)) / np.maximum(
        s.std(axis=1, keepdims=True), 1e-12)
    return out


def train_recvae(x: sp.csr_matrix, gamma: float, checkpoints: tuple[int, ...], seed: int,
                 on_checkpoint: Callable[[int, Scorer], None]) -> float:
    """Train RecVAE on the rows of ``x``; calls ``on_checkpoint(epoch, scorer)`` at each
    checkpoint. Returns the training seconds (checkpoint calls excluded)."""
    from fastinsight.recsys.keras_env import use_jax_backend

    use_jax_backend()
    import jax
    import jax.numpy as jnp
    import keras

    keras.utils.set_random_seed(seed)
    n = int(x.shape[1])
    inputs = keras.Input((n,))
    layers: list[Any] = []
    h = inputs
    for i in range(5):
        dense = keras.layers.Dense(HIDDEN, name=f"enc_{i}")(h)
        total = keras.layers.Add()([dense, *layers]) if layers else dense
        h = keras.layers.LayerNormalization(epsilon=0.1)(keras.layers.Activation("silu")(total))
        layers.append(h)
    encoder = keras.Model(inputs, [keras.layers.Dense(LATENT)(h), keras.layers.Dense(LATENT)(h)])
    decoder = keras.Sequential([keras.Input((LATENT,)), keras.layers.Dense(n)])
    opt_enc, opt_dec = keras.optimizers.Adam(LEARNING_RATE), keras.optimizers.Adam(LEARNING_RATE)
    opt_enc.build(encoder.trainable_variables)
    opt_dec.build(decoder.trainable_variables)

    def encode(ev: Any, rows: Any) -> Any:
        out, _ = encoder.stateless_call(ev, [], rows)
        return out

    def decode(dv: Any, z: Any) -> Any:
        out, _ = decoder.stateless_call(dv, [], z)
        return out

    def normalise(rows: Any) -> Any:
        return rows / jnp.maximum(jnp.linalg.norm(rows, axis=1, keepdims=True), 1e-12)

    def log_normal(z: Any, mu: Any, logvar: Any) -> Any:
        return -0.5 * (math.log(2 * math.pi) + logvar + (z - mu) ** 2 / jnp.exp(logvar))

    def encoder_loss(ev: Any, dv: Any, rows: Any, old_mu: Any, old_logvar: Any, key: Any) -> Any:
        k_drop, k_eps = jax.random.split(key)
        keep = jax.random.bernoulli(k_drop, 1.0 - INPUT_DROPOUT, rows.shape)
        mu, logvar = encode(ev, normalise(rows) * keep / (1.0 - INPUT_DROPOUT))
        z = mu + jnp.exp(0.5 * logvar) * jax.random.normal(k_eps, mu.shape)
        nll = -jnp.sum(rows * jax.nn.log_softmax(decode(dv, z), axis=-1), axis=-1)
        prior = jnp.stack([
            log_normal(z, 0.0, jnp.zeros_like(z)) + math.log(3 / 20),
            log_normal(z, old_mu, old_logvar) + math.log(15 / 20),
            log_normal(z, 0.0, jnp.full_like(z, 10.0)) + math.log(2 / 20),
        ], axis=-1)
        kl = jnp.sum(log_normal(z, mu, logvar) - jax.nn.logsumexp(prior, axis=-1), axis=1)
        return jnp.mean(nll + gamma * jnp.sum(rows, axis=1) * kl)

    def decoder_loss(dv: Any, ev: Any, rows: Any, key: Any) -> Any:
        mu, logvar = encode(ev, normalise(rows))
        z = mu + jnp.exp(0.5 * logvar) * jax.random.normal(key, mu.shape)
        return jnp.mean(-jnp.sum(rows * jax.nn.log_softmax(decode(dv, z), axis=-1), axis=-1))

    @jax.jit
    def encoder_step(ev: Any, oe: Any, dv: Any, rows: Any, om: Any, ol: Any, key: Any) -> Any:
        grads = jax.grad(encoder_loss)(ev, dv, rows, om, ol, key)
        return opt_enc.stateless_apply(oe, grads, ev)

    @jax.jit
    def decoder_step(dv: Any, od: Any, ev: Any, rows: Any, key: Any) -> Any:
        grads = jax.grad(decoder_loss)(dv, ev, rows, key)
        return opt_dec.stateless_apply(od, grads, dv)

    @jax.jit
    def posterior(ev: Any, rows: Any) -> Any:
        return encode(ev, normalise(rows))

    @jax.jit
    def score(ev: Any, dv: Any, rows: Any) -> Any:
        return decode(dv, encode(ev, normalise(rows))[0])

    ev = [v.value for v in encoder.trainable_variables]
    dv = [v.value for v in decoder.trainable_variables]
    oe = [v.value for v in opt_enc.variables]
    od = [v.value for v in opt_dec.variables]
    dense = jnp.asarray(x.toarray(), dtype=jnp.float32)
    rng = np.random.default_rng(seed)
    key = jax.random.PRNGKey(seed)
    rows_n = dense.shape[0]
    batches = max(1, -(-rows_n // BATCH))
    seconds = 0.0

    def order() -> np.ndarray:  # one shape per batch: wrap the permutation round
        perm = rng.permutation(rows_n)
        return np.resize(perm, batches * BATCH).reshape(batches, BATCH)

    for epoch in range(1, max(checkpoints) + 1):
        started = time.perf_counter()
        old_mu, old_logvar = posterior(ev, dense)
        for _ in range(ENCODER_PASSES):
            for batch in order():
                key, sub = jax.random.split(key)
                ev, oe = encoder_step(ev, oe, dv, dense[batch], old_mu[batch],
                                      old_logvar[batch], sub)
        for batch in order():
            key, sub = jax.random.split(key)
            dv, od = decoder_step(dv, od, ev, dense[batch], sub)
        jax.block_until_ready(dv)  # type: ignore[no-untyped-call]
        seconds += time.perf_counter() - started
        if epoch in checkpoints:
            def scorer(m: sp.csr_matrix, e: Any = ev, d: Any = dv) -> np.ndarray:
                return np.asarray(score(e, d, jnp.asarray(m.toarray(), dtype=jnp.float32)))
            on_checkpoint(epoch, scorer)
    return seconds


def _linear(b: np.ndarray) -> Scorer:
    return lambda m: np.asarray(m @ b)


def _linear_grid(x: sp.csr_matrix) -> dict[str, dict[tuple[Any, ...], Scorer]]:
    """EASE's λ grid and RDLAE's (λ, dropout, ξ) grid, as in ``linear_variants``."""
    grid: dict[str, dict[tuple[Any, ...], Scorer]] = {"ease": {}, "rdlae": {}}
    for lam in EASE_L2:
        grid["ease"][(lam, 0.0, None)] = _linear(Fit(x, lam).weights())
        grid["rdlae"][(lam, 0.0, None)] = grid["ease"][(lam, 0.0, None)]
    for lam, p in itertools.product(EASE_L2[1:5], DROPOUT):
        fit = Fit(x, lam, p)
        for xi in (None, *XI):
            grid["rdlae"][(lam, p, xi)] = _linear(fit.weights(xi=xi))
    return grid


def _linear_refit(x: sp.csr_matrix, config: tuple[Any, ...]) -> Scorer:
    lam, p, xi = config
    return _linear(Fit(x, lam, p).weights(xi=xi))


def run_seed(data: Any, seed: int) -> dict[str, Any]:
    parts = seed_split(data, seed, np.float64)
    split, train, final = parts.split, parts.train, parts.final
    val, test = parts.val_users, parts.test_users
    started = time.perf_counter()
    seen_val, rel_val = train[val], split.validation[val]

    def validate(scores: np.ndarray) -> float:
        return float(ndcg_recall_at_10(scores, seen_val, rel_val)[0].mean())

    validation: dict[str, dict[tuple[Any, ...], float]] = {}
    for family, grid in _linear_grid(train).items():
        validation[family] = {c: validate(scorer(seen_val)) for c, scorer in grid.items()}
    chosen = {f: max(g, key=lambda c: g[c]) for f, g in validation.items()}
    rdlae_val = _standardised(_linear_refit(train, chosen["rdlae"])(seen_val))

    validation["recvae"], validation["blend"] = {}, {}
    recvae_seconds = []
    for gamma in GAMMA:
        def checkpoint(epoch: int, scorer: Scorer, gamma: float = gamma) -> None:
            scores = _standardised(scorer(seen_val))
            validation["recvae"][(gamma, epoch)] = validate(scores)
            for w in BLEND_W[1:]:
                validation["blend"][(gamma, epoch, w)] = validate(rdlae_val + w * scores)
        recvae_seconds.append(train_recvae(train, gamma, CHECKPOINTS, seed, checkpoint))
    validation["blend"][(None, None, 0.0)] = validation["rdlae"][chosen["rdlae"]]
    chosen["recvae"] = max(validation["recvae"], key=lambda c: validation["recvae"][c])
    chosen["blend"] = max(validation["blend"], key=lambda c: validation["blend"][c])

    seen_test, rel_test = final[test], split.test[test]
    test_scores = {f: _linear_refit(final, chosen[f])(seen_test) for f in ("ease", "rdlae")}
    refits: dict[tuple[float, int], np.ndarray] = {}
    for gamma, epochs in {chosen["recvae"], chosen["blend"][:2]}:
        if gamma is None:
            continue

        def keep(epoch: int, scorer: Scorer, key: tuple[float, int] = (gamma, epochs)) -> None:
            refits[key] = scorer(seen_test)
        train_recvae(final, gamma, (epochs,), seed, keep)
    test_scores["recvae"] = refits[chosen["recvae"]]
    gamma, epochs, w = chosen["blend"]
    test_scores["blend"] = _standardised(test_scores["rdlae"]) + (
        w * _standardised(refits[(gamma, epochs)]) if w else 0.0)
    out: dict[str, Any] = {"seed": seed, "families": {},
                           "recvae_train_seconds": [round(s, 1) for s in recvae_seconds]}
    for family, scores in test_scores.items():
        result = ndcg_recall_at_10(scores, seen_test, rel_test)
        out["families"][family] = {
            "config": list(chosen[family]), "trials": len(validation[family]),
            "validation_ndcg@10": validation[family][chosen[family]],
            "per_user_ndcg": result[0].tolist(), "test_ndcg@10": float(result[0].mean()),
            "test_recall@10": float(result[1].mean()),
            "on_edge": on_edge(family, tuple(chosen[family])),
        }
    out["seconds"] = round(time.perf_counter() - started, 1)
    return out


def summarise(seeds: list[dict[str, Any]]) -> list[dict[str, Any]]:
    def per_user(family: str) -> list[np.ndarray]:
        return [np.asarray(s["families"][family]["per_user_ndcg"]) for s in seeds]

    ease_mean = float(np.mean([r.mean() for r in per_user("ease")]))
    rows = []
    for family in seeds[0]["families"]:
        runs = [s["families"][family] for s in seeds]
        paired = paired_to_reference(per_user(family), per_user("ease"))
        mean = paired.pop("mean")
        versus_rdlae = paired_to_reference(per_user(family), per_user("rdlae"))
        rows.append({
            "family": family, "test_ndcg@10": round(mean, 4), "vs_ease": round(mean / ease_mean, 3),
            **paired, "diff_rdlae": versus_rdlae["diff"], "rdlae_ci_low": versus_rdlae["ci_low"],
            "rdlae_ci_high": versus_rdlae["ci_high"],
            "test_recall@10": round(float(np.mean([r["test_recall@10"] for r in runs])), 4),
            "validation_ndcg@10": round(float(np.mean([r["validation_ndcg@10"] for r in runs])), 4),
            "configs": "; ".join(str(tuple(r["config"])) for r in runs),
            "on_edge": "; ".join(f"seed {s['seed']}: " + ", ".join(s["families"][family]["on_edge"])
                                 for s in seeds if s["families"][family]["on_edge"]) or "none",
        })
    return rows


def main() -> int:
    parser = seeds_parser(__doc__.splitlines()[0])
    args = parser.parse_args()
    seeds = binary_seed_runs(args, run_seed)
    if seeds is None:
        return 2
    rows = summarise(seeds)
    columns = ["family", "test_ndcg@10", "vs_ease", "diff", "ci_low", "ci_high", "diff_rdlae",
               "rdlae_ci_low", "rdlae_ci_high", "test_recall@10", "validation_ndcg@10"]
    drop_per_user(seeds)
    payload = {"protocol": BINARY_PROTOCOL,
               "grids": {"gamma": GAMMA, "epochs": CHECKPOINTS, "blend_w": BLEND_W},
               "summary": rows, "seeds": seeds}
    md = ["# RecVAE (Keras 3) over seeds (binary protocol)", "",
          f"Seeds {args.seeds}; `bench/recvae_study.py`; paired 95% intervals of the per-user "
          "difference to EASE and to RDLAE (stratified bootstrap within seeds). Seconds per "
          "seed: " + ", ".join(str(s["seconds"]) for s in seeds) + "; RecVAE training "
          "seconds per gamma: " + "; ".join(str(s["recvae_train_seconds"]) for s in seeds)
          + ".", ""]
    md += study_table(rows, columns, {"choice per seed": "configs", "on a grid edge": "on_edge"})
    return publish_study(args, "recvae_study", payload, md, rows, columns)


if __name__ == "__main__":
    raise SystemExit(main())
