"""``lobfast demo``: the whole pipeline on real recordings plus a simulated stretch.

read -> rebuild the book -> quality report -> features -> labels -> calibrate a simulator on
the real data and simulate a stretch long enough to train on -> purged split -> windows ->
train a small DeepLOB-TCN on CPU -> evaluate against the raw forward return (on held-out
simulated data, on a stretch of the other simulation mode and on the real recording) ->
cost-aware backtest. Writes a markdown report and PNG figures to ``out`` and returns what it
measured.

The model never sees the real recording while training: it is trained on the flow-driven
simulator (``simulate(price=None)``: the mid moves only through the simulated order flow,
whose rates react to the book as calibrated on the real one, so the book carries information
about the next move there too) and then judged on the real recording. A shorter stretch of
the path-driven mode (the book following a Hawkes jump diffusion fitted to the real mid,
without drift) shows the difference: there the book cannot foretell the price. On a few
minutes of one symbol no model is expected to earn its fees; the point is an honest,
complete run.
"""

from __future__ import annotations

import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from . import backtest, datasets, evaluate, plots, split
from .book import check_against_quotes, reconstruct
from .errors import LobWarning
from .labels import combine, forward_return, smoothed
from .microstructure import features
from .models import DeepLOBTCN, count_parameters
from .quality import quality_report
from .readers import expand_paths, read_binance
from .sim import HawkesJumpDiffusion, calibrate, compare_facts, plot_facts, simulate
from .torch import WindowDataset
from .train import fit, predict
from .windowing import Normalizer, as_features

H = 20  # label horizon, rows of 100 ms: 2 s
T = 50  # window, rows: 5 s
FEE_BPS = 1.0  # taker fee per side; Binance's top tiers pay about this much


@dataclass
class DemoResult:
    """What the demo measured; ``report`` is the markdown written to ``out/report.md``."""

    out: Path
    seconds: dict[str, float] = field(default_factory=dict)
    metrics: dict[str, Any] = field(default_factory=dict)
    backtests: dict[str, Any] = field(default_factory=dict)
    threshold: float = float("nan")  # picked on the validation backtest
    figures: list[Path] = field(default_factory=list)
    report: str = ""


class _Steps:
    """Numbered step lines with their durations."""

    def __init__(self, total: int, quiet: bool) -> None:
        self.total, self.k, self.quiet, self.seconds = total, 0, quiet, {}

    def __call__(self, name: str):
        self.k += 1
        if not self.quiet:
            print(f"[{self.k}/{self.total}] {name} ...", flush=True)
        return _Timer(self, name)


class _Timer:
    def __init__(self, steps: _Steps, name: str) -> None:
        self.steps, self.name = steps, name

    def __enter__(self):
        self.t0 = time.perf_counter()
        return self

    def __exit__(self, *exc):
        dt = time.perf_counter() - self.t0
        self.steps.seconds[self.name] = dt
        if not self.steps.quiet and exc[0] is None:
            print(f"      done in {dt:.1f} s", flush=True)


def _mid(book) -> np.ndarray:
    return (book.bid_px[:, 0] + book.ask_px[:, 0]) / 2


def _relative_book(book) -> np.ndarray:
    """The DeepLOB matrix with prices in bps from the mid (sizes as they are)."""
    x = as_features(book)[0].reshape(len(book), -1, 4)
    mid = _mid(book)[:, None]
    with np.errstate(invalid="ignore"):
        x[:, :, 0] = (x[:, :, 0] - mid) / mid * 1e4
        x[:, :, 2] = (x[:, :, 2] - mid) / mid * 1e4
    x[~book.valid] = np.nan  # invalid rows are left out of every window anyway
    return x.reshape(len(book), -1)


def _labels(book):
    raw, sm = forward_return(book, H), smoothed(book, H)
    return raw, sm, raw[f"ret_{H}"], sm[f"smooth_{H}"]


def run(
    data: Any = None,
    out: str | Path = "demo-output",
    *,
    symbol: str | None = None,
    sim_minutes: float = 60.0,
    epochs: int = 5,
    seed: int = 0,
    quick: bool = False,
    quiet: bool = False,
    md: Any = None,
) -> DemoResult:
    """Run the demo; ``data``: recordings (paths or globs) instead of the bundled sample.

    ``quick`` simulates 6 minutes and trains one epoch (for tests); ``md``: the recordings
    already read (``MarketData``), so they are not read again."""
    if quick:
        sim_minutes, epochs = 6.0, 1
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    res = DemoResult(out=out)
    steps = _Steps(9, quiet)
    torch.manual_seed(seed)
    lines: list[str] = ["# lobfast demo", ""]

    with steps("read the recordings"):
        paths = (
            [datasets.path(n) for n in ("spot_btcusdt_20240808", "spot_btcusdt_20240809")]
            if data is None
            else expand_paths(data)
        )
        md = read_binance(paths, symbol=symbol) if md is None else md  # already read by the caller
        if len(md.depth) == 0:
            raise ValueError(f"no depth data in {', '.join(map(str, paths))}")
    with steps("rebuild the book every 100 ms and check it"):
        book = reconstruct(md.depth, levels=10, every="100ms")
        check = check_against_quotes(md.depth, md.quotes)
        quality = quality_report(md)
    with steps("features and labels"):
        feats = features(book, md.trades)
        raw, sm, ret, target = _labels(book)
    span = (book.ts[-1] - book.ts[0]) / 1e9
    lines += [
        "## Real data",
        "",
        f"- {md.symbol} ({md.market}), {len(paths)} file(s): {span:,.0f} s, {len(md.depth):,} depth rows, "
        f"{len(md.trades):,} trades, {len(md.quotes):,} bookTicker updates, gaps {md.stats['gaps']}.",
        f"- Book: {len(book):,} rows of 10 levels every 100 ms, {int(book.valid.sum()):,} valid. "
        f"Rebuilt best bid/ask = the exchange's bookTicker in {check.matched:,} of {check.compared:,} shared updates.",
        "",
        "```",
        str(quality),
        "```",
        "",
    ]

    path_minutes = max(sim_minutes / 6, 2.0)
    with steps(f"calibrate the simulator and simulate {sim_minutes:g} + {path_minutes:g} minutes"):
        flow = calibrate(md)
        ok = book.valid
        # minutes of data say nothing about the drift (an annualised mu of +-20 is noise):
        # the fit reports it with its standard error and the simulation leaves it out
        fitted = HawkesJumpDiffusion.fit(book.ts[ok], _mid(book)[ok])
        start = int(book.ts[-1]) + 3_600 * 10**9  # an hour after the real data: never overlapping it
        sim = simulate(f"{int(sim_minutes * 60)}s", flow=flow, seed=seed, symbol="SIMUSDT", start=start)
        smd = sim.market_data()
        sbook = reconstruct(smd.depth, levels=10, every="100ms")
        sraw, ssm, sret, starget = _labels(sbook)
        psim = simulate(
            f"{int(path_minutes * 60)}s", flow=flow, price=fitted, seed=seed + 1, symbol="SIMUSDT", start=start
        )
        pmd = psim.market_data()
        pbook = reconstruct(pmd.depth, levels=10, every="100ms")
        praw, psm, pret, ptarget = _labels(pbook)
        modes = {"path-driven": pmd, "flow-driven": smd}
        facts = compare_facts(md, modes)
        res.figures.append(out / "stylized_facts.png")
        plot_facts(md, modes, res.figures[-1])
    lines += [
        "## Simulated market",
        "",
        f"- Order flow calibrated on the real recording: {flow!r}; its rates at the best quotes react to "
        "the book (queue imbalance, recent mid changes) as measured there.",
        f"- Flow-driven (training data): {sim_minutes:g} minutes in which only the simulated flow moves the "
        f"mid: {len(smd.depth):,} depth rows, {len(smd.trades):,} trades; book rows {len(sbook):,}, "
        f"{int(sbook.valid.sum()):,} valid.",
        f"- Path-driven (for comparison): {path_minutes:g} minutes with the book following {fitted!r}, fitted on "
        "the real mid (two steps: jumps above 4 sigma, then the Hawkes likelihood of their times) and "
        f"simulated without drift (the fitted mu is {abs(fitted.mu) / fitted.mu_se:.1f} standard errors from 0).",
        "",
        "Stylized facts, real next to both simulation modes (`ofi_ic`: best-level order-flow imbalance over "
        "1 s against the next second's return):",
        "",
        _table(facts, None),
        "",
        "![stylized facts](stylized_facts.png)",
        "",
    ]

    with steps("purged split, normalise on training rows, windows"):
        sp = split.chronological(sbook.ts, (0.6, 0.2, 0.2), known_at=combine(sraw, ssm), embargo=H, rows=sbook.valid)
        SX, RX = _relative_book(sbook), _relative_book(book)
        norm = Normalizer("zscore").fit(SX, rows=sp.train)
        y = starget * 1e4  # basis points: a well-scaled target
        train, val, test = (WindowDataset(SX, y, T, r, norm, valid=sbook.valid) for r in (sp.train, sp.val, sp.test))
        real = WindowDataset(RX, target * 1e4, T, None, norm, valid=book.valid)
        other = WindowDataset(_relative_book(pbook), ptarget * 1e4, T, None, norm, valid=pbook.valid)
    lines += [
        "## Training",
        "",
        f"- Windows of {T} rows (5 s) of the 10-level book (40 columns in DeepLOB order; prices as bps from "
        "the mid, so a model trained at one price level applies at another), z-scored with statistics of the "
        f"training rows only; target: DeepLOB smoothed return over {H} rows (2 s), in bps.",
        "- Flow-driven simulated data split by time 60/20/20, purged (label horizons crossing a boundary) and "
        f"embargoed {H} rows: {sp!r}.",
        f"- Windows: train {len(train):,}, validation {len(val):,}, test {len(test):,}; path-driven "
        f"{len(other):,}; real {len(real):,}.",
    ]

    with steps(f"train a small DeepLOB-TCN for {epochs} epoch(s) on CPU"):
        model = DeepLOBTCN(features=40, head="regression", channels=16, inception=16, tcn_channels=32)
        hist = fit(
            model, train, val, loss="huber", epochs=epochs, batch_size=256, lr=2e-3, patience=3,
            device="cpu", seed=seed, progress=not quiet,
        )  # fmt: skip
        res.figures.append(out / "training_curves.png")
        evaluate.plot_history(hist.as_dict(), res.figures[-1])
    lines += [
        f"- DeepLOB-TCN, {count_parameters(model):,} parameters, receptive field {model.receptive_field} rows; "
        f"{hist.epochs} epoch(s), best {hist.best_epoch + 1}, validation Huber loss "
        f"{min(hist.val_loss):.4f}.",
        "",
        "![training curves](training_curves.png)",
        "",
    ]

    with steps("evaluate against the raw forward return"):
        sets = {
            "simulated test": (test, sbook, sret),
            "path-driven sim": (other, pbook, pret),
            "real recording": (real, book, ret),
        }
        preds = {}
        inflated = []
        for name, (ds, _, r) in sets.items():
            preds[name] = predict(model, ds)
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always", LobWarning)
                res.metrics[name] = evaluate.evaluate_predictions(preds[name], ds.targets, r[ds.ends] * 1e4)
            inflated += [f"- **{name}**: {w.message}." for w in caught if issubclass(w.category, LobWarning)]
        table = evaluate.summary_table(res.metrics)
    lines += [
        "## Evaluation",
        "",
        "Metrics against the training target (smoothed) and, what matters, against the raw forward return "
        f"over the same {H} rows (`raw_*`): the IC is `raw_spearman`. `simulated test` is held-out flow-driven "
        "data (the mode trained on, where the book moves the mid); in the path-driven simulation the price "
        "follows its own process, independent of the simulated order flow, so book features cannot predict "
        "it there and a near-zero IC is expected; the real recording is the test that counts (a few minutes of "
        "one symbol: expect noise).",
        "",
        _table(table, ["target_pearson", "raw_pearson", "raw_spearman", "raw_directional_accuracy", "raw_n"]),
        "",
        *([*inflated, ""] if inflated else []),
    ]

    with steps("cost-aware backtest"):
        # thresholds from the validation predictions, never from the rows traded
        vpred = predict(model, val)
        thresholds = [float(np.quantile(np.abs(vpred), q)) for q in (0.5, 0.8, 0.95)]
        for name, (ds, bk, p) in (
            ("validation", (val, sbook, vpred)),
            *((k, (d, b, preds[k])) for k, (d, b, _) in sets.items()),
        ):
            signal = np.full(len(bk), np.nan)
            signal[ds.ends] = p
            res.backtests[name] = backtest.hold_to_horizon(signal, bk, H, thresholds, fee_bps_taker=FEE_BPS)
        # the threshold is chosen on the validation rows; the test rows are only reported
        res.threshold = res.backtests["validation"].best().threshold
        res.figures.append(out / "backtest_pnl.png")
        backtest.plot_pnl(res.backtests["real recording"], res.figures[-1])
    lines += [
        "## Backtest",
        "",
        f"Taker entry crossing the spread, hold {H} rows (2 s), taker exit, {FEE_BPS:g} bps fee a side; "
        "non-overlapping holds; thresholds are quantiles of |prediction| on the validation set, and the one "
        f"with the best net PnL there ({res.threshold:.3g} bps) is the one the summary reports for the test sets.",
        "",
    ]
    for name, sweep in res.backtests.items():
        lines += [f"{name}:", "", _table(sweep.table(), None), ""]
    lines += ["![backtest PnL on the real recording](backtest_pnl.png)", ""]
    lines += _baselines(sets, preds, FEE_BPS, H)

    with steps("figures and report"):
        t_end = book.ts[-1]
        recent = book[book.ts >= t_end - 120 * 10**9]
        for name, make in (
            ("book_heatmap.png", lambda p: plots.book_heatmap(recent, md.trades, p)),
            ("mid_microprice.png", lambda p: plots.mid_microprice(feats, p, last=1200)),
            ("ofi_vs_returns.png", lambda p: plots.ofi_vs_returns(feats["ofi_1s"], ret, p, label="OFI over 1 s")),
        ):
            make(out / name)
            res.figures.append(out / name)
        lines[2:2] = [
            "![order book and trades](book_heatmap.png)",
            "",
            "![mid and microprice](mid_microprice.png)",
            "",
            "![OFI against the next return](ofi_vs_returns.png)",
            "",
        ]
    res.seconds = dict(steps.seconds)
    total = sum(res.seconds.values())
    lines += ["## Timing", "", *[f"- {k}: {v:.1f} s" for k, v in res.seconds.items()], f"- total: {total:.1f} s", ""]
    res.report = "\n".join(lines)
    (out / "report.md").write_text(res.report)
    if not quiet:
        print(_summary(res, total))
    return res


def _baselines(sets: dict, preds: dict, fee_bps: float, horizon: int) -> list[str]:
    """Report lines that put the model next to what needs no model: always long (every row
    a signal, held to the horizon, one position at a time) and always flat (no trade, PnL
    0), and that flag near-constant predictions, which can look fine on a rank metric."""
    rows = []
    for name, (ds, bk, _) in sets.items():
        p = preds[name]
        spread = float(np.std(p)) if len(p) else 0.0
        scale = float(np.nanstd(ds.targets)) if len(ds.targets) else 0.0
        constant = len(p) > 1 and (spread <= 1e-3 * scale or len(np.unique(np.round(p, 9))) <= 2)
        signal = np.full(len(bk[0]) if isinstance(bk, tuple) else len(bk), np.nan)
        signal[ds.ends] = 1.0
        long = backtest.hold_to_horizon(signal, bk, horizon, fee_bps_taker=fee_bps)
        rows.append((name, spread, scale, constant, long))
    out = [
        "Baselines that need no model: always long (a long position at every prediction row, held "
        f"{horizon} rows, one at a time, same fees) and always flat (no trade: net PnL 0).",
        "",
        "| data | prediction std | target std | near-constant | always long: trades | always long: net PnL | "
        "always flat: net PnL |",
        "|---|---|---|---|---|---|---|",
    ]
    for name, spread, scale, constant, long in rows:
        flag = "**yes**" if constant else "no"
        out.append(f"| {name} | {spread:.4g} | {scale:.4g} | {flag} | {long.trades} | {long.net_pnl:+.6f} | 0 |")
    if any(r[3] for r in rows):
        out += ["", "**The model's predictions are near-constant on some data: its metrics there say little.**"]
    return [*out, ""]


def _table(df, columns) -> str:
    """A DataFrame as a markdown table (without depending on tabulate)."""
    if columns is not None:
        df = df[[c for c in columns if c in df.columns]]
    head = "| " + " | ".join([str(df.index.name or ""), *map(str, df.columns)]) + " |"
    rule = "|" + "---|" * (len(df.columns) + 1)
    rows = ["| " + " | ".join([_fmt(i), *(_fmt(v) for v in row)]) + " |" for i, row in zip(df.index, df.to_numpy())]
    return "\n".join([head, rule, *rows])


def _fmt(v: Any) -> str:
    if isinstance(v, (float, np.floating)):
        if not np.isfinite(v):
            return "nan"
        return f"{int(v):,}" if float(v).is_integer() and abs(v) >= 1000 else f"{v:,.4g}"
    return f"{v:,}" if isinstance(v, (int, np.integer)) else str(v)


def _summary(res: DemoResult, total: float) -> str:
    out = ["", f"lobfast demo finished in {total:.0f} s; report and figures in {res.out}/"]
    for name, m in res.metrics.items():
        r = m["raw"]
        out.append(
            f"  {name:<15} IC vs raw return {r['spearman']:+.3f}, Pearson {r['pearson']:+.3f}, "
            f"direction right {r.get('directional_accuracy', float('nan')):.1%} (n={r['n']:,})"
        )
    for name, sweep in res.backtests.items():
        if name == "validation":
            continue
        r = next(r for r in sweep if r.threshold == res.threshold)
        out.append(
            f"  {name:<15} backtest at the validation's threshold {r.threshold:.3g} bps: {r.trades} trades, "
            f"net {r.net_pnl * 1e4:+.1f} bps, gross {r.gross_pnl * 1e4:+.1f} bps"
        )
    return "\n".join(out)
