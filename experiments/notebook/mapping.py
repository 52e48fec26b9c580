"""Lab-notebook probes of the culture's sensorimotor mapping (docs/learning.md, entries 4-6, 11-12).

Where does the paddle's behaviour come from, and can plasticity reach it? Subcommands (all of
them in ``--help``):

    python experiments/notebook/mapping.py play --seed 0 --minutes 5 [--layout vertical]
        [--culture JSON] [--decoder JSON] [--condition stimulus] [--state-in FILE]
        [--shaping MS [--shaping-band]] [--avoid | --avoid-inverted | --avoid-yoked FILE]
        [--out runs/notebook]
    python experiments/notebook/mapping.py rewire SRC DST
        --how direct|direct-anti|motor-inputs|shuffle
    python experiments/notebook/mapping.py probe --seed 0
    python experiments/notebook/mapping.py visibility runs/notebook/v25/v25-seed100-frozen.jsonl
        [--tau-ms 100 1000]
    python experiments/notebook/mapping.py bound --rule runs/notebook/ub12h/ub12h
        --frozen runs/notebook/ub12h/ub12h [--yoked runs/notebook/ub24c/ub24c]
        [--seeds 100 101 102 103] [--required 0.26]

``play`` runs one closed-loop session with a per-tick trace and prints the mapping: for each of
the 8 ball bands (top to bottom), the mean movement while the ball is in that band (+1 = the
paddle pushed up on every tick, -1 down), per quarter of the session; "top - bottom" is the mean
movement in the top four bands minus the bottom four (> 0: a topographic, tracking-like map);
the ARL per window; and how the direct sensory -> motor E->E weights changed. ``--shaping MS``
adds dense predictable feedback (the hit's 100 Hz train, at most every MS ms) whenever the paddle
pushes towards the ball while the ball approaches: an upper bound on what the feedback could
teach, not the DishBrain rule. The culture is saved after the session (``--out``) for
``rewire``.

``rewire`` edits a saved culture's E->E weights (the wiring stays): ``direct`` sets every
synapse from a band's sensory neurons onto the motor regions of the "right" direction (up for the
top four bands) to the maximum and onto the wrong ones to 0 (``direct-anti``: the reverse);
``motor-inputs`` doubles every E->E input of up-region neurons from the top half of the dish and
zeroes those from the bottom half (mirrored for down-region neurons); ``shuffle`` permutes all
E->E weights. Play the result with ``play --state-in DST``.

``play --spikes`` also writes every spike of the session (DIR/TAG-seedS-COND.spikes.bin), and
``trigger DIR/TAG-seedS-COND ...`` reads it (entry 32): how often the motor neurons' own fast
trace reaches a threshold on a feedback train and off it.

``probe`` stimulates a fresh culture open-loop as the feedback does (8 hits, 3 misses) and prints
each neuron group's spike-count trace maxima (tau 30 and 100 ms) after hits, misses and in a
spontaneous burst: the signal that tagged STDP's capture threshold reads.

"Sensory neurons" of band k are the excitatory neurons that the band's electrode records (within
100 um, where a 75 mV pulse fires them); "motor neurons" those that the layout's up or down
electrodes record: exactly the neurons whose spikes the decoder counts.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import types
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

BANDS = 8


def _groups(mea, positions, is_exc, layout: str):
    """(sensory masks per band, up mask, down mask) over neurons, excitatory only."""
    from dishbrain.weight_edits import motor_groups
    return motor_groups(mea, positions, is_exc, layout)


def _ee_arrays(z):
    """E->E (pre, post, initial weight, current weight) of a saved culture, in saved order."""
    pre, post = z["structure::pre"], z["structure::post"]
    exc = z["structure::is_excitatory"]
    ee = exc[pre] & exc[post]
    return pre[ee], post[ee], z["structure::weight"][ee], z["state::culture_synapses_ee::w"]


def _mea_of(z):
    """The MEA a saved culture was built on."""
    from dishbrain.mea import MEA, MEAConfig
    return MEA(MEAConfig(**json.loads(bytes(z["meta_json"]).decode())["mea_config"]))


def _saved_ee(path: Path, layout: str):
    """A saved culture's E->E (pre, post, initial w, current w), its groups (`_groups`: sensory
    masks per band, up, down) and its neurons' positions."""
    with np.load(path) as f:
        z = {k: f[k] for k in f.files}
    pos = z["structure::positions_um"]
    return _ee_arrays(z), _groups(_mea_of(z), pos, z["structure::is_excitatory"], layout), pos


def weight_report(path: Path, layout: str) -> None:
    (pre, post, w0, w1), (sens, up, down), _ = _saved_ee(path, layout)
    print(f"E->E weights: mean {w0.mean():.4f} -> {w1.mean():.4f}; "
          f"at 0: {np.mean(w1 <= 1e-9):.3f}, at max: {np.mean(w1 >= w1.max() - 1e-9):.3f}")
    cells = []
    for k, s in enumerate(sens):
        su, sd = s[pre] & up[post], s[pre] & down[post]
        cells.append(f"{k}: up {w0[su].mean():.4f}->{w1[su].mean():.4f} "
                     f"down {w0[sd].mean():.4f}->{w1[sd].mean():.4f}")
    print("direct sensory->motor mean weight per band:\n  " + "\n  ".join(cells))


def _pushes(trace: np.ndarray, court_height: float):
    """Per tick: ball in play, the push (+1 up, -1 down, 0), the ball's band (0 = top), and
    each quarter's mask."""
    from envs.pong import ACTION_DOWN, ACTION_UP
    in_play = trace["in_play"] > 0
    move = np.where(trace["action"] == ACTION_UP, 1.0,
                    np.where(trace["action"] == ACTION_DOWN, -1.0, 0.0))
    band = np.clip((trace["ball_y"] / court_height * BANDS).astype(int), 0, BANDS - 1)
    n = len(trace)
    quarters = [np.zeros(n, bool) for _ in range(4)]
    for q, sel in enumerate(quarters):
        sel[q * n // 4:(q + 1) * n // 4] = True
    return in_play, move, band, quarters


def quarter_maps(trace: np.ndarray, court_height: float) -> list[float]:
    """Top - bottom (mean push with the ball in the top four bands minus the bottom four) per
    quarter of the session, the numbers `mapping_table` prints in its second column."""
    in_play, move, band, quarters = _pushes(trace, court_height)
    return [float(move[in_play & sel & (band < BANDS // 2)].mean()
                  - move[in_play & sel & (band >= BANDS // 2)].mean()) for sel in quarters]


def cmd_bound(a) -> None:
    """The upper-bound table of docs/learning.md (entries 11-12) from the sessions' logs: per seed
    top - bottom in the first and last quarter under the rule and under Frozen, the changes, rule -
    Frozen, ARL 0-5 -> 15-20; then the mean and the verdict against --required. With --yoked
    (entry 24: the same sessions with the feedback replayed, not contingent on the culture's
    pushes) also Y = the yoked rule's change - the yoked Frozen's, and C - Y, the contingency's
    own part, on which the verdict then rests."""
    from dishbrain.logs import read_trace
    from dishbrain.metrics import read_session, windows
    from envs.pong import PongConfig

    height = PongConfig().court_height

    def one(prefix: str, seed: int, condition: str):
        log = f"{prefix}-seed{seed}-{condition}.jsonl"
        if not Path(log).exists():
            raise SystemExit(f"mapping.py bound: no session log {log}")
        _, trace = read_trace(log)
        q = quarter_maps(trace, height)
        arl = {m.window: m.arl for m in windows(read_session(log), [(0, 5), (15, 20)])}
        return q[0], q[3], arl

    diffs, parts = [], []
    print("| seed | rule: map q1 -> q4 | change | Frozen: map q1 -> q4 | change | rule - Frozen "
          "| ARL rule 0-5 -> 15-20 | ARL Frozen |" + (" Y (yoked) | C - Y |" if a.yoked else ""))
    print("|---|---|---|---|---|---|---|---|" + ("---|---|" if a.yoked else ""))
    for seed in a.seeds:
        r0, r3, ra = one(a.rule, seed, "stimulus")
        f0, f3, fa = one(a.frozen, seed, "frozen")
        d = (r3 - r0) - (f3 - f0)
        diffs.append(d)
        ar, af = list(ra.values()), list(fa.values())
        row = (f"| {seed} | {r0:+.3f} -> {r3:+.3f} | {r3 - r0:+.3f} | {f0:+.3f} -> {f3:+.3f} | "
               f"{f3 - f0:+.3f} | {d:+.3f} | {ar[0]:.2f} -> {ar[1]:.2f} | "
               f"{af[0]:.2f} -> {af[1]:.2f} |")
        if a.yoked:
            y0, y3, _ = one(a.yoked, seed, "stimulus")
            z0, z3, _ = one(a.yoked, seed, "frozen")
            y = (y3 - y0) - (z3 - z0)
            parts.append(d - y)
            row += f" {y:+.3f} | {d - y:+.3f} |"
        print(row)
    need = -(-3 * len(diffs) // 4)

    def summary(label: str, values: list[float]) -> tuple[float, int]:
        mean, right = float(np.mean(values)), sum(v > 0 for v in values)
        print(f"{label}: mean {mean:+.3f}, right sign on {right} of {len(values)}")
        return mean, right

    mean, right = summary("rule - Frozen (C)", diffs)
    if a.yoked:   # the verdict rests on the contingency's part
        mean, right = summary("the contingency's part (C - Y)", parts)
    ok = mean >= a.required and right >= need
    print(f"{'C - Y' if a.yoked else 'C'}: required >= {a.required:+.2f} and the right sign on >= "
          f"{need}: {'passes' if ok else 'fails'} its upper bound")



def cmd_visibility(a) -> None:
    """Entry 25's table (`dishbrain.visibility`; the product's `dishbrain analyze --visibility`
    prints the same): per session and tau, the push's part of band k's co-activity with the up
    and down regions, against the common level and the geometry's spread across bands."""
    from dishbrain.visibility import format_visibility, visibility_of_log
    results = [r for log in a.logs for r in visibility_of_log(log, a.tau_ms)]
    print(format_visibility(results))
    if a.coactivity:
        print("\nco-activity (entry 29): corr(U, D) of the up and the down electrodes' counts in "
              "1-s bins; mean corr between the four motor quadrants in 100-ms bins; share of "
              "motor spikes in burst ticks (dish-wide count > 5x the median non-empty tick)")
        print(f"{'session':<44} {'corr UD 1s':>10} {'corr quad 100ms':>15} {'in bursts':>9}")
        for log in a.logs:
            c = coactivity(log)
            print(f"{Path(log).name:<44} {c['corr_ud_1s']:>10.2f} "
                  f"{c['corr_quadrants_100ms']:>15.2f} {c['burst_share']:>9.2f}")
    if a.figure:
        visibility_figure(results, a.figure, dict(x.split("=", 1) for x in a.label),
                          a.figure_tau_ms)


def coactivity(log: str) -> dict[str, float]:
    """How much the motor regions fire together in one session's trace (entries 27-29): the
    correlation of the up and the down electrodes' counts in 1-s bins, the mean correlation
    between the four motor quadrants' counts in 100-ms bins, and the share of the motor spikes
    that fall in burst ticks (ticks whose dish-wide count exceeds 5x the median non-empty
    tick's, as entry 28d)."""
    from dishbrain.logs import read_trace
    from dishbrain.visibility import motor_electrodes
    meta, trace = read_trace(log)
    counts = np.asarray(trace["counts"], dtype=float)
    tick = float(meta.get("tick_ms", 10.0))
    array = meta["array"]
    regions = [sorted(r) for r in array["motor_up"]] + [sorted(r) for r in array["motor_down"]]
    up, down = motor_electrodes(meta)

    def binned(x: np.ndarray, ms: float) -> np.ndarray:
        k = max(1, int(round(ms / tick)))
        n = len(x) // k * k
        return x[:n].reshape(-1, k).sum(axis=1)

    U, D = binned(counts[:, up].sum(axis=1), 1000.0), binned(counts[:, down].sum(axis=1), 1000.0)
    q = [binned(counts[:, r].sum(axis=1), 100.0) for r in regions]
    pairs = [np.corrcoef(q[i], q[j])[0, 1] for i in range(len(q)) for j in range(i + 1, len(q))]
    total = counts.sum(axis=1)
    burst = total > 5.0 * np.median(total[total > 0])
    motor = counts[:, up + down].sum(axis=1)
    return {"corr_ud_1s": float(np.corrcoef(U, D)[0, 1]),
            "corr_quadrants_100ms": float(np.mean(pairs)),
            "burst_share": float(motor[burst].sum() / max(motor.sum(), 1.0))}


def visibility_figure(results, path: str, labels: dict[str, str], tau_ms: float,
                      gate: float = 0.09) -> None:
    """Entry 26's figure: per variant (the sessions' tag, the part of the file name before
    "-seed"), each session's median visibility at `tau_ms` as a dot and the variants' medians as
    bars, with the pre-gate of entry 26 as a line."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    groups: dict[str, list[float]] = {}
    for r in results:
        if r.tau_ms == tau_ms:
            groups.setdefault(r.source.split("-seed")[0], []).append(r.median)
    if not groups:
        raise SystemExit(f"mapping.py visibility: no session at --figure-tau-ms {tau_ms:g}")
    names = list(groups)
    fig, ax = plt.subplots(figsize=(1.0 + 0.9 * len(names), 4.2))
    for x, name in enumerate(names):
        values = groups[name]
        ax.bar(x, np.median(values), color="#9ecae1", width=0.6)
        ax.plot(np.full(len(values), x) + np.linspace(-0.15, 0.15, len(values)), values, "o",
                color="#08519c", ms=4)
    ax.axhline(gate, color="#cb181d", ls="--", lw=1)
    ax.text(len(names) - 0.5, gate, f"pre-gate {gate:g}", color="#cb181d", ha="right",
            va="bottom", fontsize=8)
    ax.set_xticks(range(len(names)), [labels.get(n, n) for n in names], rotation=30,
                  ha="right", fontsize=8)
    ax.set_ylabel(f"visibility at tau {tau_ms / 1000:g} s\n(push / common co-activity)")
    ax.set_title("How much of a push the synapses onto the motor regions see", fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    print(f"figure: {path}")


def direct_index(path: Path, layout: str = "dishbrain") -> tuple[float, np.ndarray]:
    """How far a saved culture's direct sensory -> motor synapses moved towards the tracking map
    (entry 26k, post hoc): per band k, log(sum of w onto up / at the start) - log(the same onto
    down); the index is the mean over the top four bands minus the mean over the bottom four
    (> 0: the top bands' synapses gained onto up relative to down, the bottom bands' onto down)."""
    from dishbrain.weight_edits import direct_index_per_band, index_of_bands
    (pre, post, w0, w1), groups, _ = _saved_ee(path, layout)
    per_band = direct_index_per_band(w0, w1, pre, post, groups)
    return index_of_bands(per_band), per_band


def cmd_direct(a) -> None:
    """Entry 26k's post-hoc table: the direct-route index of each seed's rule session and of its
    yoke (the sessions' saved cultures, DIR/TAG-seedS-stimulus.npz), and their difference."""
    print("| seed | rule | yoked | rule - yoked |")
    print("|---|---|---|---|")
    diffs = []
    for seed in a.seeds:
        c = direct_index(Path(f"{a.rule}-seed{seed}-stimulus.npz"), a.layout)[0]
        y = direct_index(Path(f"{a.yoked}-seed{seed}-stimulus.npz"), a.layout)[0]
        diffs.append(c - y)
        print(f"| {seed} | {c:+.3f} | {y:+.3f} | {c - y:+.3f} |")
    print(f"mean rule - yoked {np.mean(diffs):+.3f}, positive on {sum(d > 0 for d in diffs)} of "
          f"{len(diffs)}")


def shake_row(stem: str, layout: str = "dishbrain") -> dict:
    """Entry 28's numbers for one session (STEM.jsonl with its trace, STEM.npz): how far the
    direct sensory -> motor weights moved from the start (the root mean square over bands of
    `direct_index`'s per-band log-ratio changes), the behavioural map per quarter and its mean
    |change| between successive quarters, and the session's misses."""
    from dishbrain.logs import read_trace
    from dishbrain.metrics import read_session
    from envs.pong import PongConfig
    _, per_band = direct_index(Path(f"{stem}.npz"), layout)
    _, trace = read_trace(f"{stem}.jsonl")
    maps = quarter_maps(trace, PongConfig().court_height)
    session = read_session(f"{stem}.jsonl")
    return {"rms": float(np.sqrt(np.nanmean(per_band ** 2))),
            "quarters": maps,
            "change": float(np.mean(np.abs(np.diff(maps)))),
            "misses": session.n_rallies}     # a rally ends with a miss


def train_coactivity(log: str, tau_ms: float = 100.0) -> tuple[float, int]:
    """Entry 31c: the tracking-signed co-activity of the up and the down electrodes before the
    predictable trains that began in play (shaping trains and hits' trains) of one session's
    trace: sum over trains of s(k) (U - D) / sum of (U + D) / 2, U and D the leaky counts of
    `dishbrain.visibility` (what the decision at the tick could know), s(k) +1 for the ball in
    the top four bands, -1 in the bottom four. Returns (that ratio, the number of trains)."""
    from dishbrain.encoding import PlaceCodeEncoder
    from dishbrain.logs import FEEDBACK_CODES, read_trace
    from dishbrain.visibility import leaky_motor_counts
    meta, trace = read_trace(log)
    U, D = leaky_motor_counts(meta, trace, tau_ms)
    height = float(meta.get("env_config", {}).get("court_height", 600.0))
    band = PlaceCodeEncoder(BANDS).slots(np.asarray(trace["ball_y"]) / height)
    trains = np.flatnonzero((np.asarray(trace["feedback"]) == FEEDBACK_CODES["predictable"])
                            & (np.asarray(trace["in_play"]) > 0))
    s = np.where(band[trains] < BANDS // 2, 1.0, -1.0)
    return float((s * (U - D)[trains]).sum() / (0.5 * (U + D)[trains]).sum()), int(trains.size)


def cmd_trains(a) -> None:
    """Entry 31c's table: per seed, `train_coactivity` of the rule's Stimulus session and of its
    yoke's, and their difference (> 0: the push before the rule's trains leans towards tracking
    more than before the yoke's)."""
    from scipy.stats import wilcoxon
    print("| seed | rule (trains) | yoked (trains) | rule - yoked |\n|---|---|---|---|")
    diffs = []
    for seed in a.seeds:
        r, nr = train_coactivity(f"{a.rule}-seed{seed}-stimulus.jsonl", a.tau_ms)
        y, ny = train_coactivity(f"{a.yoked}-seed{seed}-stimulus.jsonl", a.tau_ms)
        diffs.append(r - y)
        print(f"| {seed} | {r:+.3f} ({nr}) | {y:+.3f} ({ny}) | {r - y:+.3f} |")
    d = np.array(diffs)
    sem = d.std(ddof=1) / np.sqrt(d.size) if d.size > 1 else float("nan")
    p = wilcoxon(d, alternative="greater").pvalue if d.size > 1 else float("nan")
    print(f"tau {a.tau_ms:g} ms: rule - yoked {d.mean():+.3f} +- {sem:.3f}, positive on "
          f"{int((d > 0).sum())} of {d.size}, one-sided Wilcoxon p {p:.3f}")


def inputs_index(path: Path, layout: str = "dishbrain") -> float:
    """How far a saved culture's E->E inputs onto the recorded motor neurons moved towards the
    tracking map (entry 31f, post hoc; the grip's ``motor-inputs`` edit as a measure): for the up
    region log(sum of w from the top half of the dish / at the start) - log(the same from the
    bottom half), plus the mirror for the down region (> 0: towards tracking)."""
    (pre, post, w0, w1), (_, up, down), pos = _saved_ee(path, layout)
    top = pos[:, 1] < np.median(pos[:, 1])   # y grows downward

    def log_gain(sel):
        return float(np.log(w1[sel].sum() / w0[sel].sum()))

    return sum(sign * (log_gain(region[post] & top[pre]) - log_gain(region[post] & ~top[pre]))
               for region, sign in ((up, 1.0), (down, -1.0)))


def cmd_follow(a) -> None:
    """Entry 31f (post hoc): does the paddle's map follow the direct synapses? Over the Stimulus
    sessions of each DIR/TAG given (a rule's and its yoke's alike), the direct-route index of the
    saved culture (entry 26k: its move towards tracking) against the map's change from the first
    quarter to the last less the same seed's Frozen session's (DIR/TAG-seedS-frozen, played with
    plasticity off), with Spearman's rank correlation."""
    from scipy.stats import spearmanr

    from dishbrain.logs import read_trace
    from envs.pong import PongConfig
    height = PongConfig().court_height

    def change(log: str) -> float:
        q = quarter_maps(read_trace(log)[1], height)
        return q[3] - q[0]

    xs, vs, ys = [], [], []
    print("| sessions | seed | direct index | inputs index | map change - Frozen's |\n"
          "|---|---|---|---|---|")
    for prefix in a.prefixes:
        for seed in a.seeds:
            stem = f"{prefix}-seed{seed}"
            x = direct_index(Path(f"{stem}-stimulus.npz"), a.layout)[0]
            v = inputs_index(Path(f"{stem}-stimulus.npz"), a.layout)
            y = change(f"{stem}-stimulus.jsonl") - change(f"{stem}-frozen.jsonl")
            xs.append(x)
            vs.append(v)
            ys.append(y)
            print(f"| {Path(prefix).name} | {seed} | {x:+.3f} | {v:+.3f} | {y:+.3f} |")
    for name, values in (("direct index", xs), ("inputs index", vs)):
        rho, p = spearmanr(values, ys)
        slope = float(np.polyfit(values, ys, 1)[0])
        print(f"{len(ys)} sessions, {name}: Spearman rho {rho:+.2f} (p {p:.2f}); least-squares "
              f"slope {slope:+.3f} map per unit; the index spans {min(values):+.2f} to "
              f"{max(values):+.2f}")


def trigger_table(stem: str, thetas, tau_ms: float, window_ms: float, layout: str) -> dict:
    """Entry 32's pre-gate for one session (``play --spikes``): would a capture triggered in the
    postsynaptic neuron fire on the trains and not on the network's bursts?

    For each excitatory neuron the layout's up or down electrodes record (the motor neurons),
    its fast trace hf (+1 per spike, decay tau_ms, the spike itself counted, as the model's hf)
    at each of its spikes; a trigger episode starts at a spike with hf >= theta whose previous
    spike had hf < theta (a capture clears the tags, so one capture per episode). Predictable
    trains: the ticks whose feedback code is "predictable" (shaping trains and hits' trains);
    an episode is on a train when it starts within window_ms after the train's start. The spike
    file's clock is aligned to the trace's ticks by the lag that best correlates the recorded
    motor spikes per tick with the trace's motor-electrode counts (reported)."""
    from dishbrain.logs import FEEDBACK_CODES
    sp = _aligned_spikes(stem, layout)
    meta, trace, motor = sp["meta"], sp["trace"], sp["motor"]
    tick = float(meta["tick_ms"])
    keep = motor[sp["neuron"]]
    t, i = sp["t_ms"][keep], sp["neuron"][keep]
    n_ticks = len(trace)
    order = np.lexsort((t, i))
    ts, ns = t[order], i[order]
    hf, prev = _fast_trace_at_spikes(ts, ns, tau_ms)
    fb = np.asarray(trace["feedback"])
    trains = np.flatnonzero(fb == FEEDBACK_CODES["predictable"]) * tick
    misses = np.flatnonzero(fb == FEEDBACK_CODES["unpredictable"]) * tick

    def after(starts, span_ms):   # (index of the last start at or before each spike, within?)
        k = np.searchsorted(starts, ts, side="right") - 1
        if not starts.size:
            return k, np.zeros(ts.size, bool)
        return k, (k >= 0) & (ts - starts[np.maximum(k, 0)] < span_ms)

    pos, on_train = after(trains, window_ms)
    on_miss = after(misses, 4000.0)[1] & ~on_train
    minutes = n_ticks * tick / 60000.0
    n_motor = int(motor.sum())
    out = {"lag_ticks": sp["lag_ticks"], "r_align": sp["r_align"], "n_motor": n_motor,
           "trains": trains.size, "rate_hz": ts.size / n_motor / (minutes * 60.0), "rows": []}
    for theta in thetas:
        start = (hf >= theta) & (prev < theta)
        on = start & on_train
        reached = np.zeros(trains.size)
        for k in range(trains.size):   # fraction of motor neurons with an episode on train k
            sel = on & (pos == k)
            reached[k] = np.unique(ns[sel]).size / n_motor
        off = start & ~on_train
        out["rows"].append({
            "theta": theta, "episodes": int(start.sum()),
            "selectivity": float(on.sum() / max(start.sum(), 1)),
            "reach": float(reached.mean()) if trains.size else float("nan"),
            "off_per_neuron_min": float(off.sum() / n_motor / minutes),
            "miss_share": float((start & on_miss).sum() / max(start.sum(), 1))})
    return out


def _aligned_spikes(stem: str, layout: str = "dishbrain", max_lag_ticks: int = 200) -> dict:
    """A ``play --spikes`` session's spikes on the trace's clock: the spike file's times shifted
    by the lag (within +-max_lag_ticks) that best correlates the layout's recorded motor neurons'
    spikes per tick with the trace's motor-electrode counts. Returns meta, trace, t_ms (shifted),
    neuron, motor (the mask of those neurons), lag_ticks and r_align (that correlation)."""
    from dishbrain.culture import SPIKE_RECORD_DTYPE
    from dishbrain.logs import read_trace
    from dishbrain.visibility import motor_electrodes
    meta, trace = read_trace(f"{stem}.jsonl")
    tick = float(meta["tick_ms"])
    rec = np.fromfile(f"{stem}.spikes.bin", dtype=SPIKE_RECORD_DTYPE)
    (_, _, _, _), (_, up, down), _ = _saved_ee(Path(f"{stem}.npz"), layout)
    motor = up | down
    ue, de = motor_electrodes(meta)
    counts = np.asarray(trace["counts"])[:, ue + de].sum(1).astype(float)
    bins = np.floor(rec["t_ms"][motor[rec["neuron"]]] / tick).astype(int)
    n = len(trace)
    best = (-2.0, 0)
    for lag in range(-max_lag_ticks, max_lag_ticks + 1):
        b = bins - lag
        h = np.bincount(b[(b >= 0) & (b < n)], minlength=n)
        best = max(best, (np.corrcoef(h, counts)[0, 1], lag))
    return {"meta": meta, "trace": trace, "t_ms": rec["t_ms"] - best[1] * tick,
            "neuron": rec["neuron"], "motor": motor, "lag_ticks": best[1], "r_align": best[0]}


def _fast_trace_at_spikes(ts: np.ndarray, ns: np.ndarray, tau_ms: float
                          ) -> tuple[np.ndarray, np.ndarray]:
    """Spikes sorted by (neuron, time): each neuron's fast trace at each of its spikes (+1 per
    spike, decay tau_ms, the spike itself counted, as the model's hf) and just before it."""
    hf = np.ones(ts.size)
    same = np.r_[False, ns[1:] == ns[:-1]]
    decay = np.exp(-np.maximum(np.diff(ts, prepend=0.0), 0.0) / tau_ms)
    for k in np.flatnonzero(same):
        hf[k] = hf[k - 1] * decay[k] + 1.0
    return hf, np.where(same, np.r_[0.0, hf[:-1]] * decay, 0.0)


def synapse_push(stem: str, window_ms: float = 100.0, tau_ms: float = 100.0,
                 layout: str = "dishbrain", all_bands: bool = False,
                 offset_ms: float = 0.0, pre_gate: float = 0.0, post_gate: float = 0.0,
                 decay_ms: float = 0.0) -> tuple[float, int, float]:
    """Entry 34b: the push in the direct synapses' co-activity before the predictable trains of
    one ``play --spikes`` session (plasticity off). For each train, the ball's band k (at the
    train's tick) and its sensory neurons' E->E synapses onto the up and onto the down motor
    neurons: each synapse's Hebbian co-activity over the window_ms before the train (at each of
    its source's spikes, the target's fast trace, tau_ms, +1 per spike, as `tag_rule` "hebbian" /
    "conditional" read it), summed per side over the side's initial summed weight (a capture of
    gain G moves that side's log weight by ~G x this); then, as `train_coactivity`, sum over
    trains of s(k) (R_up - R_down) / sum of (R_up + R_down) / 2, s(k) = +1 for the top four
    bands. With all_bands, every band b's synapses at every train (a train captures all eight),
    each with its own sign s(b): what the direct index moves by, per unit of gain, if each
    train captured every band's co-activity. offset_ms moves the window's end from the train's
    start to offset_ms after it (e.g. 50: the train's first five pulses, which a tag gate at 5
    lets tag). As a gated rule's tag would: pre_gate > 0 counts a source spike only while the
    source's own fast trace (tau_ms, this spike included) is below it (`tag_hf_max`), post_gate
    > 0 only while the target's is below it, and decay_ms > 0 weighs each by exp(-age /
    decay_ms) at the window's end (the tag's decay). Returns (that ratio, the number of trains,
    the common level (R_up + R_down) / 2 summed over the bands counted, per train)."""
    from dishbrain.encoding import PlaceCodeEncoder
    from dishbrain.logs import FEEDBACK_CODES
    sp = _aligned_spikes(stem, layout)
    meta, trace = sp["meta"], sp["trace"]
    tick = float(meta["tick_ms"])
    (pre, post, w0, _), (sens, up, down), _ = _saved_ee(Path(f"{stem}.npz"), layout)
    height = float(meta.get("env_config", {}).get("court_height", 600.0))
    band = PlaceCodeEncoder(BANDS).slots(np.asarray(trace["ball_y"]) / height)
    trains = np.flatnonzero((np.asarray(trace["feedback"]) == FEEDBACK_CODES["predictable"])
                            & (np.asarray(trace["in_play"]) > 0))
    order = np.lexsort((sp["t_ms"], sp["neuron"]))
    t, i = sp["t_ms"][order], sp["neuron"][order]
    hf_all = _fast_trace_at_spikes(t, i, tau_ms)[0]
    neurons, first = np.unique(i, return_index=True)
    by_neuron = dict(zip(neurons, np.split(t, first[1:])))
    hf_at = dict(zip(neurons, np.split(hf_all, first[1:])))
    # each band's synapses onto each side: (their sources, targets, initial summed weight)
    synapses = {(k, side): (pre[m], post[m], w0[m].sum())
                for k, s in enumerate(sens) for side, target in (("up", up), ("down", down))
                for m in [s[pre] & target[post]]}
    num = den = 0.0
    for k0 in trains:
        t0 = k0 * tick + offset_ms
        for k in (range(BANDS) if all_bands else [int(band[k0])]):
            r = {}
            for side in ("up", "down"):
                sources, targets, w_sum = synapses[(k, side)]
                total = 0.0
                for a, b in zip(sources, targets):
                    ts = by_neuron.get(a, np.empty(0))
                    sel = (ts >= t0 - window_ms) & (ts < t0)
                    if pre_gate > 0:
                        sel &= hf_at[a] < pre_gate
                    ts = ts[sel]
                    if not ts.size:
                        continue
                    tp = by_neuron.get(b, np.empty(0))
                    tp = tp[(tp >= t0 - window_ms - 5 * tau_ms) & (tp < t0)]
                    if tp.size:
                        d = ts[:, None] - tp[None, :]
                        h = np.where(d >= 0, np.exp(-np.maximum(d, 0) / tau_ms), 0).sum(1)
                        if post_gate > 0:
                            h = np.where(h < post_gate, h, 0.0)
                        if decay_ms > 0:
                            h = h * np.exp(-(t0 - ts) / decay_ms)
                        total += float(h.sum())
                r[side] = total / w_sum if sources.size else 0.0
            sgn = 1.0 if k < BANDS // 2 else -1.0
            num += sgn * (r["up"] - r["down"])
            den += 0.5 * (r["up"] + r["down"])
    return ((num / den if den > 0 else float("nan")), int(trains.size),
            den / max(trains.size, 1))


def cmd_synapse_push(a) -> None:
    """Entry 34b's table: per seed `synapse_push` of the contingent session and of its yoke, and
    beside it the electrodes' `train_coactivity`; rule - yoke."""
    from scipy.stats import wilcoxon
    print("| seed | synapses: rule (trains) | yoked (trains) | rule - yoked | electrodes: rule - "
          "yoked |\n|---|---|---|---|---|")
    d_syn, d_el = [], []
    for seed in a.seeds:
        opts = {"all_bands": a.all_bands, "offset_ms": a.offset_ms, "pre_gate": a.pre_gate,
                "post_gate": a.post_gate, "decay_ms": a.decay_ms}
        r, nr, _ = synapse_push(f"{a.rule}-seed{seed}-{a.condition}", a.window_ms, a.tau_ms,
                                **opts)
        y, ny, _ = synapse_push(f"{a.yoked}-seed{seed}-{a.condition}", a.window_ms, a.tau_ms,
                                **opts)
        e = (train_coactivity(f"{a.rule}-seed{seed}-{a.condition}.jsonl")[0]
             - train_coactivity(f"{a.yoked}-seed{seed}-{a.condition}.jsonl")[0])
        d_syn.append(r - y)
        d_el.append(e)
        print(f"| {seed} | {r:+.3f} ({nr}) | {y:+.3f} ({ny}) | {r - y:+.3f} | {e:+.3f} |")
    for name, d in (("synapses", np.array(d_syn)), ("electrodes", np.array(d_el))):
        sem = d.std(ddof=1) / np.sqrt(d.size) if d.size > 1 else float("nan")
        p = wilcoxon(d, alternative="greater").pvalue if d.size > 1 else float("nan")
        print(f"{name}: rule - yoked {d.mean():+.3f} +- {sem:.3f}, positive on "
              f"{int((d > 0).sum())} of {d.size}, one-sided Wilcoxon p {p:.3f}")


def cmd_trigger(a) -> None:
    """Entry 32's pre-gate table over sessions (`trigger_table`), per theta the median over
    sessions and the range."""
    rows = {}
    for stem in a.stems:
        stem = stem.removesuffix(".jsonl")
        r = trigger_table(stem, a.theta, a.tau_ms, a.window_ms, a.layout)
        print(f"{Path(stem).name}: {r['n_motor']} motor neurons at {r['rate_hz']:.2f} Hz, "
              f"{r['trains']} trains, spikes aligned to the trace at lag {r['lag_ticks']} ticks "
              f"(r {r['r_align']:.2f})")
        for row in r["rows"]:
            rows.setdefault(row["theta"], []).append(row)
    print(f"\ntau {a.tau_ms:g} ms, window {a.window_ms:g} ms after each train's start; median "
          f"over {len(a.stems)} sessions [range]\n"
          "| theta | episodes per session | on trains (selectivity) | motor neurons reached "
          "per train | off-train episodes per neuron per min | of them in misses' 4 s |\n"
          "|---|---|---|---|---|---|")
    for theta, rs in rows.items():
        def cell(key, fmt, rs=rs):
            v = np.array([r[key] for r in rs], float)
            return f"{np.median(v):{fmt}} [{v.min():{fmt}}-{v.max():{fmt}}]"
        print(f"| {theta:g} | {cell('episodes', '.0f')} | {cell('selectivity', '.2f')} | "
              f"{cell('reach', '.3f')} | {cell('off_per_neuron_min', '.2f')} | "
              f"{cell('miss_share', '.2f')} |")


def cmd_shake(a) -> None:
    """Entry 28's table: per seed and condition, the direct weights' displacement (rms over
    bands), the map's mean |change| between quarters and the misses; then the paired tests."""
    from scipy.stats import wilcoxon
    rows = {c: [shake_row(f"{a.prefix}-seed{seed}-{c}", a.layout) for seed in a.seeds]
            for c in a.conditions}
    print("| seed | " + " | ".join(f"{c}: weights rms / map change / misses"
                                    for c in a.conditions) + " |")
    print("|---|" + "---|" * len(a.conditions))
    for i, seed in enumerate(a.seeds):
        print(f"| {seed} | " + " | ".join(
            f"{rows[c][i]['rms']:.3f} / {rows[c][i]['change']:.3f} / {rows[c][i]['misses']}"
            for c in a.conditions) + " |")
    for c in a.conditions:
        r = rows[c]
        print(f"{c}: weights rms {np.mean([x['rms'] for x in r]):.3f}, map change "
              f"{np.mean([x['change'] for x in r]):.3f} +- "
              f"{np.std([x['change'] for x in r], ddof=1) / np.sqrt(len(r)):.3f} (SEM), "
              f"misses {np.mean([x['misses'] for x in r]):.0f}")
    first = a.conditions[0]
    for other in a.conditions[1:]:
        for key in ("rms", "change"):
            x = np.array([v[key] for v in rows[first]])
            y = np.array([v[key] for v in rows[other]])
            d = x - y
            p = wilcoxon(x, y).pvalue if np.any(d != 0) else 1.0
            print(f"{first} - {other}, {key}: {d.mean():+.3f} (higher on {int(np.sum(d > 0))} "
                  f"of {len(d)}, Wilcoxon p {p:.2g})")


def mapping_table(trace: np.ndarray, court_height: float) -> None:
    in_play, move, band, quarters = _pushes(trace, court_height)
    print(f"paddle y: mean {trace['paddle_y'].mean():.0f}, sd {trace['paddle_y'].std():.0f}; "
          f"ticks pushing up {np.mean(move > 0):.3f}, down {np.mean(move < 0):.3f}, "
          f"staying {np.mean(move == 0):.3f}")
    print("quarter  top-bottom  mean movement per ball band (top ... bottom)")
    for q, (sel, top_bottom) in enumerate(zip(quarters, quarter_maps(trace, court_height),
                                              strict=True)):
        per_band = [move[in_play & sel & (band == k)].mean() if np.any(in_play & sel & (band == k))
                    else np.nan for k in range(BANDS)]
        print(f"{q:>7}  {top_bottom:+10.3f}  " + " ".join(f"{x:+.2f}" for x in per_band))


def add_shaping(agent, min_interval_ms: float, lf_ms: float = 0.0, band: bool = False,
                window_ms: float = 0.0, min_toward: float = 0.2, away: bool = False,
                yoked: str | None = None) -> dict:
    """Dense predictable feedback whenever the paddle pushes towards an approaching ball.

    away (entry 17): the same train after each push *away* from the ball instead (with
    window_ms: when the average is <= -min_toward), so that pair STDP sees the push that was
    wrong before the train (post before pre) and depresses the synapses that made it.

    band (entry 13, H1): the train plays on the sensory electrode of the ball's band only, not
    on all 8. window_ms > 0 (entry 13c): "towards" is read over the recent past, not the tick:
    an exponential average (time constant window_ms, over the in-play ticks) of +1 for a push
    towards the ball, -1 away, 0 none; the train plays when it is >= min_toward.

    lf_ms > 0: also the miss's unpredictable train (its amplitude and 5 Hz Poisson pulses on
    the sensory electrodes, FeedbackConfig's values) for lf_ms whenever it pushes away from it,
    under the same minimum interval (entry 11: the upper bound of bidirectional capture).

    yoked (entry 24d): another session's ``.shaping-eligible.npy``, one code per tick on which a
    train could start (ball in play and approaching, no feedback): 0 none, 1 the hit's train, 2
    the miss's. This culture's k-th such tick starts the train the other's k-th started (the
    sequence repeats past its end; 3: both), whatever this culture pushes: the same trains in
    the same order, not contingent on its pushes. ``state["eligible"]`` holds this session's codes;
    ``cmd_play`` saves them beside the session's log.
    """
    from envs.pong import ACTION_DOWN, ACTION_UP, OBS_BALL_X, OBS_BALL_Y, OBS_IN_PLAY, OBS_PADDLE_Y
    state = {"last_ms": -np.inf, "count": 0, "lf_count": 0, "toward": 0.0, "eligible": []}
    pattern = np.load(yoked).astype(np.int8) if yoked else None
    if pattern is not None and not len(pattern):
        raise SystemExit(f"mapping.py play: --shaping-yoked {yoked}: no eligible ticks")
    learn = agent.learn
    keep = float(np.exp(-10.0 / window_ms)) if window_ms > 0 else 0.0
    rng = np.random.default_rng(12345)
    sign = -1.0 if away else 1.0   # +1: the train follows pushes towards the ball, -1: away

    def shaped(self, obs, action, reward, next_obs, terminated, truncated, info):
        learn(obs, action, reward, next_obs, terminated, truncated, info)
        t = float(self.culture.t_ms)
        want_up = next_obs[OBS_BALL_Y] < next_obs[OBS_PADDLE_Y]
        # +1: this tick pushes towards the ball, -1: away from it, 0: no push.
        push = 0.0 if action not in (ACTION_UP, ACTION_DOWN) else (
            1.0 if (action == ACTION_UP) == want_up else -1.0)
        if window_ms > 0 and next_obs[OBS_IN_PLAY] >= 0.5:
            state["toward"] = keep * state["toward"] + (1.0 - keep) * push
        if next_obs[OBS_IN_PLAY] < 0.5 or self.feedback.is_active(t) or next_obs[OBS_BALL_X] >= 0.5:
            return
        if pattern is not None:
            code = int(pattern[len(state["eligible"]) % len(pattern)])
        elif t - state["last_ms"] < min_interval_ms:
            code = 0
        else:   # bit 1: the miss's train, bit 0: the hit's (both may start on one tick)
            code = (2 if lf_ms > 0 and push < 0 else 0) | (
                1 if ((sign * push > 0) if window_ms <= 0
                      else (sign * state["toward"] >= min_toward)) else 0)
        state["eligible"].append(code)
        c = self.feedback.config
        if code & 2:
            sensory = list(self.culture.mea.sensory)
            n = min(c.unpredictable_electrodes, len(sensory))
            picked = set(rng.choice(len(sensory), size=n, replace=False).tolist())
            self.encoder.stop(self.culture)
            self.culture.stimulate([e for k, e in enumerate(sensory) if k in picked],
                                   c.unpredictable_amplitude_mv, c.unpredictable_rate_hz / n,
                                   lf_ms, random_timing=True)
            self.feedback._record("unpredictable", t, lf_ms)
            state["last_ms"] = t
            state["lf_count"] += 1
        if code & 1:
            sensory = list(self.culture.mea.sensory)
            slot = self.encoder.slot
            targets = [sensory[slot]] if band and slot is not None else sensory
            self.encoder.stop(self.culture)
            self.culture.stimulate(targets, c.predictable_amplitude_mv,
                                   c.predictable_rate_hz, c.predictable_duration_ms,
                                   random_timing=False)
            self.feedback._record("predictable", t, c.predictable_duration_ms)
            state["last_ms"] = t
            state["count"] += 1

    agent.learn = types.MethodType(shaped, agent)
    return state


def add_avoidance(agent, inverted: bool = False, yoked: str | None = None,
                  yoke_by: str = "tick") -> dict:
    """Learning by stimulation avoidance (Shahaf & Marom 2001; Sinapayen, Masumori & Ikegami
    2017), as shaping, not the DishBrain rule (entry 12g): while the ball is in play the
    encoder's own train (the ball's band and rate) plays only on ticks after a push away from
    the ball or no push; a push towards it removes the train for the next tick, within 10 ms of
    the decoded push. inverted (entry 12h): a push away from the ball (or no push) removes it,
    so the train plays only after pushes towards the ball. yoked (entry 24): the path of another
    session's ``.removed.npy`` (the ticks, counted from the session's first, on which its train
    was removed); the train is removed on the same ticks whatever this culture does: the same
    removals, not contingent on this culture's pushes. yoke_by "eligible" (entry 24b) counts
    instead the ticks on which a removal could happen (ball in play, no feedback): ``yoked`` is
    then the other session's ``.removed-eligible.npy`` (one bool per such tick: removed or not),
    and this culture's k-th such tick loses its train when the other's k-th did (the sequence
    repeats past the other's last): the same fraction of the rallies' ticks, in the same order.
    ``state["log"]`` lists the ticks on which the train was removed, ``state["eligible"]`` the
    removals per eligible tick; ``cmd_play`` saves both beside the session's log."""
    from envs.pong import ACTION_DOWN, ACTION_UP, OBS_BALL_Y, OBS_IN_PLAY, OBS_PADDLE_Y
    state = {"removed": 0, "ticks": 0, "tick": 0, "log": [], "eligible": []}
    replay = pattern = None
    if yoked and yoke_by == "eligible":
        pattern = np.load(yoked).astype(bool)
        if not len(pattern):
            raise SystemExit(f"mapping.py play: --avoid-yoked {yoked}: no eligible ticks")
    elif yoked:
        replay = set(np.load(yoked).tolist())
    learn = agent.learn

    def remove(self, tick):
        self.encoder.stop(self.culture)
        state["removed"] += 1
        state["log"].append(tick)

    def avoiding(self, obs, action, reward, next_obs, terminated, truncated, info):
        learn(obs, action, reward, next_obs, terminated, truncated, info)
        tick = state["tick"]
        state["tick"] += 1
        if replay is not None:
            if tick in replay:
                remove(self, tick)
            state["ticks"] += 1
            return
        if next_obs[OBS_IN_PLAY] < 0.5 or self.feedback.is_active(float(self.culture.t_ms)):
            return
        if pattern is not None:
            cut = bool(pattern[state["ticks"] % len(pattern)])
        else:
            want_up = next_obs[OBS_BALL_Y] < next_obs[OBS_PADDLE_Y]
            toward = (action == ACTION_UP and want_up) or (action == ACTION_DOWN and not want_up)
            cut = toward != inverted
        if cut:
            remove(self, tick)
        state["eligible"].append(cut)
        state["ticks"] += 1

    agent.learn = types.MethodType(avoiding, agent)
    return state


def cmd_play(a) -> None:
    from agents.culture import make_culture_agent
    from dishbrain.logs import read_trace
    from dishbrain.metrics import read_session, windows
    from dishbrain.session import play_session
    from dishbrain.viewer import trace_wrapper

    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    stem = out / f"{a.tag}-seed{a.seed}-{a.condition}"
    agent = make_culture_agent(
        seed=a.seed, condition=a.condition, layout=a.layout, state_in=a.state_in,
        culture_config=json.loads(a.culture) if a.culture else None,
        decoder_config=json.loads(a.decoder) if a.decoder else None,
        mea_config=json.loads(a.mea) if a.mea and a.state_in is None else None,
        state_out=f"{stem}.npz", yoke_log=a.yoke_log or None)
    if a.spikes:   # every spike of the session (entry 32), written as the binary runs
        agent.culture._spike_file = Path(f"{stem}.spikes.bin")
        agent.culture._spike_file.write_bytes(b"")
    if a.shaping_yoked and not (a.shaping > 0 and Path(a.shaping_yoked).exists()):
        raise SystemExit("mapping.py play: --shaping-yoked needs --shaping MS (and --shaping-lf, "
                         "--shaping-band as in the session it replays) and an existing "
                         f".shaping-eligible.npy; got {a.shaping_yoked!r}")
    shaping = (add_shaping(agent, a.shaping, a.shaping_lf, a.shaping_band, a.shaping_window,
                           a.shaping_min_toward, a.shaping_away, a.shaping_yoked or None)
               if a.shaping > 0 else None)
    if a.avoid_yoked and (a.avoid or a.avoid_inverted):
        raise SystemExit("mapping.py play: --avoid-yoked replays another session's removals; "
                         "it cannot be combined with --avoid or --avoid-inverted")
    if a.avoid_yoked and not Path(a.avoid_yoked).exists():
        raise SystemExit(f"mapping.py play: --avoid-yoked: no file {a.avoid_yoked} (a "
                         "session's .removed.npy, written by play --avoid or --avoid-inverted)")
    if a.avoid_yoked and a.yoke_by == "eligible" and not a.avoid_yoked.endswith("-eligible.npy"):
        raise SystemExit("mapping.py play: --yoke-by eligible reads a .removed-eligible.npy, not "
                         f"{a.avoid_yoked}")
    if a.avoid_yoked and a.yoke_by == "tick" and a.avoid_yoked.endswith("-eligible.npy"):
        raise SystemExit("mapping.py play: --yoke-by tick (the default) reads a .removed.npy; "
                         f"{a.avoid_yoked} needs --yoke-by eligible")
    avoidance = (add_avoidance(agent, inverted=a.avoid_inverted, yoked=a.avoid_yoked or None,
                               yoke_by=a.yoke_by)
                 if a.avoid or a.avoid_inverted or a.avoid_yoked else None)
    start = time.perf_counter()
    log = f"{stem}.jsonl"
    play_session(agent, log_path=log, minutes=a.minutes, seed=a.seed, condition=a.condition,
                 progress=False, wrappers=[trace_wrapper(log, agent)])
    print(f"{stem}: {a.minutes} game min in {time.perf_counter() - start:.0f} s, "
          f"culture {agent.culture.firing_rate_hz():.2f} Hz, layout {agent.decoder.layout}"
          + (f", {shaping['count']} shaping trains" if shaping else "")
          + (f", {shaping['lf_count']} low-frequency trains" if shaping and a.shaping_lf else "")
          + (f", sensory train removed on {avoidance['removed']} of {avoidance['ticks']} ticks"
             if avoidance else ""))
    if shaping:
        np.save(f"{stem}.shaping-eligible.npy", np.asarray(shaping["eligible"], dtype=np.int8))
    if avoidance:
        np.save(f"{stem}.removed.npy", np.asarray(avoidance["log"], dtype=np.int64))
        np.save(f"{stem}.removed-eligible.npy", np.asarray(avoidance["eligible"], dtype=bool))
    _, trace = read_trace(log)
    from envs.pong import PongConfig
    mapping_table(trace, PongConfig().court_height)
    quarter = a.minutes / 4
    for m in windows(read_session(log), [(0, 5)] if a.minutes <= 5 else
                     [(0, 5), (5, None)] if a.minutes <= 10 else
                     [(q * quarter, (q + 1) * quarter) for q in range(4)]):
        print(f"minutes {m.window}: {m.rallies} rallies, ARL {m.arl:.2f}, aces {m.aces_pct:.0f} %")
    weight_report(Path(f"{stem}.npz"), agent.decoder.layout)


def cmd_rewire(a) -> None:
    with np.load(a.src) as f:
        z = {k: f[k] for k in f.files}
    pre, post, _, w = _ee_arrays(z)
    w = w.copy()
    meta = json.loads(bytes(z["meta_json"]).decode())
    w_max = float(meta["config"]["g_ee_max_per_ms"])
    positions, is_exc = z["structure::positions_um"], z["structure::is_excitatory"]
    mea = _mea_of(z)
    sens, up, down = _groups(mea, positions, is_exc, a.layout)
    if a.how in ("direct", "direct-anti", "motor-inputs"):   # grip's edits, toward or against
        from dishbrain.weight_edits import edit_weights
        w = edit_weights(w, pre, post, positions, (sens, up, down), w_max,
                         a.how.removesuffix("-anti"), toward=a.how != "direct-anti")
    elif a.how in ("modular", "modular-anti"):
        # A proxy for a two-module culture: cut every E->E synapse from the central (sensory)
        # strip onto motor neurons, then reconnect only band k's sensory neurons to the motor
        # regions of one direction, at the maximum weight.
        xs = mea.positions_um[list(mea.sensory), 0]
        strip = (positions[:, 0] >= xs.min() - 100.0) & (positions[:, 0] <= xs.max() + 100.0)
        w[strip[pre] & (up | down)[post]] = 0.0
        for k, s in enumerate(sens):
            right = up if (k < BANDS // 2) == (a.how == "modular") else down
            w[s[pre] & right[post]] = w_max
    else:
        w = np.random.default_rng(a.seed).permutation(w)
    z["state::culture_synapses_ee::w"] = w
    np.savez(a.dst, **z)
    print(f"{a.dst}: {a.how} ({a.layout})")


def cmd_probe(a) -> None:
    from brian2 import SpikeMonitor

    from dishbrain.culture import Culture, CultureConfig
    c = Culture(CultureConfig.from_dict(json.loads(a.culture)) if a.culture else CultureConfig(),
                seed=a.seed)
    sensory = list(c.mea.sensory)
    mon = SpikeMonitor(c._b.neurons, name="probe_monitor")
    c._net.add(mon)
    schedule = {5000.0 + 3000.0 * k: "hit" for k in range(8)}
    schedule.update({29000.0 + 6000.0 * k: "miss" for k in range(3)})
    rng_events = []

    def tick(t_ms, counts):
        kind = schedule.get(round(t_ms, 3))
        if kind == "hit":
            c.stimulate(sensory, 75.0, 100.0, 100.0)
        elif kind == "miss":
            c.stimulate(sensory, 150.0, 5.0 / len(sensory), 4000.0, random_timing=True)
        if kind:
            rng_events.append((t_ms, kind))
        return True

    c.run(50000.0, tick=tick, tick_ms=10.0)
    t = np.asarray(mon.t[:]) * 1e3
    i = np.asarray(mon.i[:])
    exc = c.is_excitatory
    rec = c.mea.recording_matrix(c.structure.positions_um).tocsr()
    sens = (np.asarray(rec[sensory].sum(axis=0)).ravel() > 0) & exc
    pop = np.histogram(t, bins=np.arange(0.0, 5000.0, 50.0))[0]
    burst_at = 50.0 * int(np.argmax(pop))   # the strongest spontaneous burst before the first hit

    def trace_max(lo, hi, tau, mask):
        grid = np.arange(lo, hi, 2.0)
        sel = (t >= lo - 5 * tau) & (t < hi)
        out = []
        for n in np.flatnonzero(mask):
            s = t[sel & (i == n)]
            d = grid[:, None] - s[None, :]
            out.append(np.where(d >= 0, np.exp(-np.maximum(d, 0) / tau), 0.0).sum(1).max()
                       if s.size else 0.0)
        return np.array(out)

    # The bidirectional capture's LTD condition (CultureConfig.ltd_capture) at each excitatory
    # spike: slow trace lf (tau 1 s) >= theta and fast trace hf (tau 100 ms) < 1.5, both with the
    # spike itself counted. Events per excitatory neuron per second, in each kind of window.
    def traces_at_spikes(tau):
        out = np.zeros(t.size)
        order = np.lexsort((t, i))
        out[order] = _fast_trace_at_spikes(t[order], i[order], tau)[0]
        return out

    lf_at, hf_at = traces_at_spikes(1000.0), traces_at_spikes(100.0)
    windows_ltd = [("spontaneous 0-5 s", [(0.0, 5000.0)])]
    windows_ltd.append(("hits (0.3 s each)", [(t0, t0 + 300.0) for t0, k in rng_events
                                              if k == "hit"]))
    windows_ltd.append(("misses (4 s each)", [(t0, t0 + 4000.0) for t0, k in rng_events
                                              if k == "miss"]))
    windows_ltd.append(("after misses", [(t0 + 4000.0, t0 + 6000.0) for t0, k in rng_events
                                         if k == "miss"]))
    print("LTD-capture events (lf >= theta, hf < 1.5) per excitatory neuron per s")
    print("window              rate Hz  theta=2   3      4      5")
    for label, spans in windows_ltd:
        inw = np.zeros(t.size, bool)
        for lo, hi in spans:
            inw |= (t >= lo) & (t < hi)
        secs = sum(hi - lo for lo, hi in spans) / 1e3
        sel = inw & exc[i]
        cells = [np.sum(sel & (lf_at >= th) & (hf_at < 1.5)) / exc.sum() / secs
                 for th in (2, 3, 4, 5)]
        print(f"{label:19} {np.sum(sel) / exc.sum() / secs:7.2f}  "
              + " ".join(f"{x:6.3f}" for x in cells))
    print("neurons  tau ms  event            mean   p90   p99   >=4    >=6")
    for name, mask in (("sensory", sens), ("all exc", exc)):
        for tau in (30.0, 100.0, 1000.0):
            rows = [("spontaneous burst", burst_at - 100.0, burst_at + 300.0)]
            rows += [(f"{kind} at {t0 / 1e3:.0f} s", t0,
                      t0 + (300.0 if kind == "hit" else 4000.0))
                     for t0, kind in rng_events[:3] + rng_events[8:10]]
            for label, lo, hi in rows:
                v = trace_max(lo, hi, tau, mask)
                print(f"{name:8} {tau:6.0f}  {label:17} {v.mean():5.2f} "
                      f"{np.percentile(v, 90):5.2f} {np.percentile(v, 99):5.2f} "
                      f"{np.mean(v >= 4):5.3f} {np.mean(v >= 6):6.3f}")


def _rule_and_yoke(q) -> None:
    """The options of a rule-against-yoke table: --rule, --yoked (DIR/TAG), --seeds 100-107."""
    q.add_argument("--rule", required=True, metavar="DIR/TAG")
    q.add_argument("--yoked", required=True, metavar="DIR/TAG")
    q.add_argument("--seeds", type=int, nargs="+", default=list(range(100, 108)))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = p.add_subparsers(dest="cmd", required=True)
    q = sub.add_parser("play")
    q.add_argument("--seed", type=int, default=0)
    q.add_argument("--minutes", type=float, default=5.0)
    q.add_argument("--condition", default="stimulus")
    q.add_argument("--layout", default=None)
    q.add_argument("--culture", default="", help="CultureConfig fields as JSON")
    q.add_argument("--decoder", default="", help="DecoderConfig fields as JSON")
    q.add_argument("--state-in", default=None)
    q.add_argument("--mea", default="", help="MEAConfig fields as JSON (a new culture's array)")
    q.add_argument("--shaping", type=float, default=0.0, metavar="MS")
    q.add_argument("--shaping-lf", type=float, default=0.0, metavar="MS",
                   help="with --shaping: the miss's train for MS ms after each push away")
    q.add_argument("--shaping-band", action="store_true",
                   help="with --shaping: the train on the ball's band's electrode only (H1)")
    q.add_argument("--shaping-away", action="store_true",
                   help="with --shaping: the train after each push away from the ball instead "
                        "of towards it (entry 17)")
    q.add_argument("--shaping-window", type=float, default=0.0, metavar="MS",
                   help="with --shaping: read 'towards' as an exponential average over MS ms")
    q.add_argument("--shaping-min-toward", type=float, default=0.2, metavar="F",
                   help="with --shaping-window: the average (-1..1) at or above which it plays")
    q.add_argument("--shaping-yoked", default="", metavar="FILE.shaping-eligible.npy",
                   help="with --shaping: yoked control (entry 24d): start the trains another "
                        "session started, on the same ordinal eligible ticks")
    q.add_argument("--avoid", action="store_true",
                   help="stimulation avoidance (shaping): a push towards the ball removes the "
                        "ball's sensory train for the next tick")
    q.add_argument("--avoid-inverted", action="store_true",
                   help="the reverse (shaping): the ball's sensory train plays only on ticks "
                        "after a push towards the ball")
    q.add_argument("--avoid-yoked", default="", metavar="FILE.removed.npy",
                   help="yoked control of --avoid/--avoid-inverted (entry 24): remove the "
                        "sensory train on the ticks another session removed it")
    q.add_argument("--yoke-by", choices=("tick", "eligible"), default="tick",
                   help="with --avoid-yoked: match the other session's ticks (tick, entry 24; "
                        "FILE.removed.npy) or its k-th tick in play without feedback (eligible, "
                        "entry 24b; FILE.removed-eligible.npy)")
    q.add_argument("--yoke-log", default="", metavar="LOG",
                   help="with --condition yoked: the Stimulus session whose feedback is replayed")
    q.add_argument("--spikes", action="store_true",
                   help="also write every spike (t_ms, neuron) to DIR/TAG-seedS-COND.spikes.bin")
    q.add_argument("--tag", default="play")
    q.add_argument("--out", default="runs/notebook")
    q.set_defaults(run=cmd_play)
    q = sub.add_parser("bound", help="the upper-bound table (rule vs Frozen) from the logs")
    q.add_argument("--rule", required=True, metavar="DIR/TAG",
                   help="the rule's sessions, e.g. runs/notebook/ub12h/ub12h")
    q.add_argument("--frozen", required=True, metavar="DIR/TAG")
    q.add_argument("--yoked", default="", metavar="DIR/TAG",
                   help="the yoked sessions (stimulus and frozen; entry 24): the verdict rests "
                        "on the contingency's part, rule - Frozen minus the same under the yoke")
    q.add_argument("--seeds", type=int, nargs="+", default=[100, 101, 102, 103])
    q.add_argument("--required", type=float, default=0.26)
    q.set_defaults(run=cmd_bound)
    q = sub.add_parser("visibility",
                       help="how much of a push the motor co-activity shows (entry 25)")
    q.add_argument("logs", nargs="+", metavar="LOG", help="session logs with their traces")
    q.add_argument("--tau-ms", type=float, nargs="+", default=[100.0, 1000.0])
    q.add_argument("--figure", default="", metavar="PNG",
                   help="also draw each variant's (file name before -seed) medians to PNG")
    q.add_argument("--figure-tau-ms", type=float, default=1000.0)
    q.add_argument("--coactivity", action="store_true",
                   help="also print how much the motor regions fire together (entry 29)")
    q.add_argument("--label", nargs="*", default=[], metavar="TAG=TEXT",
                   help="with --figure: axis labels for the variants' tags")
    q.set_defaults(run=cmd_visibility)
    q = sub.add_parser("direct", help="the direct sensory -> motor synapses' move towards "
                                      "tracking, rule against yoke (entry 26k, post hoc)")
    q.add_argument("--rule", required=True, metavar="DIR/TAG")
    q.add_argument("--yoked", required=True, metavar="DIR/TAG")
    q.add_argument("--seeds", type=int, nargs="+", default=[100, 101, 102, 103])
    q.add_argument("--layout", default="dishbrain")
    q.set_defaults(run=cmd_direct)
    q = sub.add_parser("shake", help="entry 28: how far each condition moved the direct "
                       "weights and the map between quarters")
    q.add_argument("prefix", metavar="DIR/TAG", help="sessions DIR/TAG-seedS-CONDITION.*")
    q.add_argument("--seeds", type=int, nargs="+", default=list(range(100, 108)))
    q.add_argument("--conditions", nargs="+", default=["stimulus", "silent", "frozen"])
    q.add_argument("--layout", default="dishbrain")
    q.set_defaults(run=cmd_shake)

    q = sub.add_parser("trains", help="entry 31c: the push in the motor co-activity before the "
                       "predictable trains, rule against its yoke")
    _rule_and_yoke(q)
    q.add_argument("--tau-ms", type=float, default=100.0)
    q.set_defaults(run=cmd_trains)

    q = sub.add_parser("follow", help="entry 31f: the map's change against the direct "
                       "synapses' and the motor inputs' moves, over sessions")
    q.add_argument("prefixes", nargs="+", metavar="DIR/TAG")
    q.add_argument("--seeds", type=int, nargs="+", default=list(range(100, 108)))
    q.add_argument("--layout", default="dishbrain")
    q.set_defaults(run=cmd_follow)

    q = sub.add_parser("trigger", help="entry 32: would a postsynaptic capture trigger fire "
                       "on the trains and not on the bursts?")
    q.add_argument("stems", nargs="+", metavar="DIR/TAG-seedS-COND",
                   help="sessions played with --spikes")
    q.add_argument("--theta", type=float, nargs="+", default=[1.0, 2.0, 3.0, 4.0, 5.0, 6.0])
    q.add_argument("--tau-ms", type=float, default=100.0)
    q.add_argument("--window-ms", type=float, default=200.0)
    q.add_argument("--layout", default="dishbrain")
    q.set_defaults(run=cmd_trigger)

    q = sub.add_parser("synapse-push", help="entry 34b: the push in the direct synapses' "
                       "co-activity before the trains, rule against yoke (play --spikes)")
    _rule_and_yoke(q)
    q.add_argument("--condition", default="frozen")
    q.add_argument("--window-ms", type=float, default=100.0)
    q.add_argument("--tau-ms", type=float, default=100.0)
    q.add_argument("--all-bands", action="store_true",
                   help="every band's synapses at every train, each with its own sign")
    q.add_argument("--offset-ms", type=float, default=0.0,
                   help="the window ends this long after the train's start (default 0)")
    q.add_argument("--pre-gate", type=float, default=0.0, metavar="HF",
                   help="count a source spike only while its fast trace is below HF")
    q.add_argument("--post-gate", type=float, default=0.0, metavar="H",
                   help="count it only while the target's fast trace is below H")
    q.add_argument("--decay-ms", type=float, default=0.0,
                   help="weigh each pairing by exp(-age / decay) at the window's end")
    q.set_defaults(run=cmd_synapse_push)

    q = sub.add_parser("rewire")
    q.add_argument("src")
    q.add_argument("dst")
    q.add_argument("--how", choices=("direct", "direct-anti", "motor-inputs", "modular",
                                     "modular-anti", "shuffle"),
                   required=True)
    q.add_argument("--layout", default="dishbrain")
    q.add_argument("--seed", type=int, default=5, help="for shuffle")
    q.set_defaults(run=cmd_rewire)
    q = sub.add_parser("probe")
    q.add_argument("--seed", type=int, default=0)
    q.add_argument("--culture", default="", help="CultureConfig fields as JSON")
    q.set_defaults(run=cmd_probe)
    a = p.parse_args()
    a.run(a)


if __name__ == "__main__":
    main()
